//! Per-owner submission rate limits: at most `submissions_per_window` task submissions
//! (new tasks and follow-ups) per owner in each `submission_window_secs` window; past
//! it, 429 with `Retry-After` (the seconds until the window ends).
//!
//! The count lives in the status cache ([`orchestrator::StatusCache::count_hit`]), so
//! on Redis every API replica shares it and on the embedded cache it is this process's.
//! It is counted before the request body is read, so a flood costs no upload. A limit
//! is a protection, not a truth: when the cache cannot count (Redis down), the
//! submission goes through (fail open), the failure is logged and counted
//! (`orchestrator_rate_limit_total{outcome="unchecked"}`), and the store's cap on live
//! tasks per owner still holds.

use std::time::Duration;

use orchestrator::metrics;

use crate::error::ApiError;
use crate::state::AppState;

/// Refuses a submission from `owner` past the configured rate.
pub async fn check_submission(state: &AppState, owner: &str) -> Result<(), ApiError> {
    let limit = state.config.submissions_per_window;
    if limit == 0 {
        return Ok(());
    }
    let window = Duration::from_secs(state.config.submission_window_secs.max(1));
    let key = format!("submit:{owner}");
    match state.services.cache.count_hit(&key, window).await {
        Ok(counted) if counted.hits > limit => {
            outcome("limited");
            let retry_after_secs = counted.resets_in.as_secs_f64().ceil().max(1.0) as u64;
            Err(ApiError::TooManyRequests {
                message: format!(
                    "over the limit of {limit} submissions per {} s; retry in {retry_after_secs} s",
                    window.as_secs()
                ),
                retry_after_secs,
            })
        }
        Ok(_) => {
            outcome("allowed");
            Ok(())
        }
        Err(err) => {
            outcome("unchecked");
            metrics::cache_error();
            tracing::warn!(error = %err, "cannot count a submission against its owner's rate limit; letting it through");
            Ok(())
        }
    }
}

fn outcome(outcome: &'static str) {
    metrics::global().inc("orchestrator_rate_limit_total", &[("outcome", outcome)]);
}
