//! When to try a failed model request again, and how long to wait first.
//!
//! Kept apart from the request code and free of clocks and randomness (both are passed
//! in), so the schedule can be checked exactly.

use std::time::Duration;

/// Bounds on retrying one model turn.
#[derive(Clone, Copy, Debug)]
pub(super) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(super) max_retries: u32,
    /// Time allowed from the first failure until the last retry starts. Counting from
    /// the first failure rather than the first request means a long stream that breaks
    /// near its end still gets retried.
    pub(super) max_elapsed: Duration,
    /// First backoff step; each further retry doubles it.
    pub(super) base_delay: Duration,
    /// Ceiling on one backoff step.
    pub(super) max_delay: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first), or `None` when the
    /// budget is spent.
    ///
    /// `retry_after` is the server's own hint: it is used as given (capped at
    /// `max_elapsed`, since the server asked for that time and jitter would only shorten
    /// it). Otherwise the wait is exponential with "equal jitter": between half and all
    /// of the step, so that clients failing together do not retry together, yet never
    /// retry at once. `jitter` is a number in `[0, 1)`. `since_first_failure` is the time
    /// already spent since the first failed attempt. The wait is cut to what remains of
    /// the budget, so no retry starts after it.
    pub(super) fn wait_before(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        since_first_failure: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        if retry == 0 || retry > self.max_retries {
            return None;
        }
        let remaining = self.max_elapsed.checked_sub(since_first_failure)?;
        if remaining.is_zero() {
            return None;
        }
        let wait = match retry_after {
            Some(hint) => hint.min(self.max_elapsed),
            None => {
                let step = self
                    .base_delay
                    .saturating_mul(2_u32.saturating_pow(retry - 1))
                    .min(self.max_delay);
                let half = step / 2;
                half + half.mul_f64(jitter.clamp(0.0, 1.0))
            }
        };
        Some(wait.min(remaining))
    }
}

#[cfg(test)]
#[path = "backoff_tests.rs"]
mod tests;
