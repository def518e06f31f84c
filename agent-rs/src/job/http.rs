//! HTTP for the job's transfers: one client, and one retry rule for the download and
//! the uploads.
//!
//! Object stores fail transiently (a 503 under load, a reset connection), and a Job
//! that gives up on the first hiccup throws away a whole agent run. Server errors,
//! throttling and connection failures are retried with backoff; any other answer (a 403
//! from an expired signature, a 404) will not change by asking again, so it ends the
//! transfer at once. Errors are built from `reqwest::Error::without_url`: reqwest puts
//! the full URL, signature included, into its messages otherwise.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;

/// How long transient download failures are retried unless configured
/// (`AGENT_DOWNLOAD_RETRY_SECS`).
pub const DEFAULT_DOWNLOAD_RETRY: Duration = Duration::from_secs(30);

/// How a transfer is retried and how long one attempt may take.
#[derive(Debug, Clone)]
pub struct TransferPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// How long after the first attempt a retry may still start: an object store's
    /// outage of a few seconds (a restart, a failover) must not end the job.
    pub retry_for: Duration,
    /// Wait before the first retry; doubles on each retry, with jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Longest time between two reads of a response before the attempt fails.
    pub read_timeout: Duration,
    /// Longest time one attempt may take, end to end.
    pub attempt_timeout: Duration,
    /// The HTTP proxy transfers go through (a sandboxed job's egress relay); none by
    /// default, whatever the environment says.
    pub proxy: Option<String>,
}

impl TransferPolicy {
    /// For the workspace: large, so attempts may be long as long as bytes keep coming;
    /// transient failures are retried for [`DEFAULT_DOWNLOAD_RETRY`].
    pub fn download() -> Self {
        Self {
            attempts: u32::MAX,
            retry_for: DEFAULT_DOWNLOAD_RETRY,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(30 * 60),
            proxy: None,
        }
    }

    /// The same policy, through `proxy`.
    pub fn via(mut self, proxy: Option<String>) -> Self {
        self.proxy = proxy;
        self
    }

    /// The same policy, retrying transient failures for `retry_for`.
    pub fn retrying_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    /// For the outputs: small files.
    pub fn upload() -> Self {
        Self {
            attempts: 4,
            attempt_timeout: Duration::from_secs(5 * 60),
            ..Self::download()
        }
    }

    fn delay_before_retry(&self, retry: u32) -> Duration {
        let doubled = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let capped = doubled.min(self.max_delay);
        // Up to a quarter of jitter, so parallel jobs do not retry in step.
        capped + capped.mul_f64(fastrand::f64() * 0.25)
    }
}

/// One failed attempt, or the last one of a transfer. `message` is safe to show: it
/// names no URL query string.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AttemptError {
    pub message: String,
    /// The failure may pass (a server error, throttling, a connection that failed):
    /// for the error [`with_retries`] returns, the retries ran out on such a failure.
    pub retryable: bool,
}

impl AttemptError {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// From a reqwest error, with the URL stripped from it.
    pub fn from_reqwest(err: reqwest::Error) -> Self {
        let retryable = err.is_connect() || err.is_timeout() || err.is_request() || err.is_body();
        let err = err.without_url();
        Self {
            message: error_chain(&err),
            retryable,
        }
    }

    /// From a response status that is not a success.
    pub fn from_status(status: StatusCode) -> Self {
        Self {
            message: format!("HTTP {status}"),
            retryable: status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// `err` and its causes on one line (reqwest's own Display hides the cause).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The client every transfer uses: the crate-wide builder (TLS provider, user agent,
/// connect timeout) plus the policy's read timeout.
pub fn client(policy: &TransferPolicy) -> Result<reqwest::Client, AttemptError> {
    let mut builder = tools::http_client::http_client_builder().read_timeout(policy.read_timeout);
    if let Some(proxy) = &policy.proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy).map_err(AttemptError::from_reqwest)?);
    }
    builder.build().map_err(AttemptError::from_reqwest)
}

/// Runs `attempt` until it succeeds, fails for good, or the retries run out (the
/// attempts, or the time: no retry starts past `retry_for` after the first attempt);
/// `what` names the transfer in the log. The last error comes back, with the attempt
/// count, still `retryable` when it was.
pub async fn with_retries<T, F, Fut>(
    policy: &TransferPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T, AttemptError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let started = tokio::time::Instant::now();
    let mut tried = 0;
    loop {
        tried += 1;
        let err = match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let wait = policy.delay_before_retry(tried);
        let retry = err.retryable
            && tried < policy.attempts
            && started.elapsed() + wait <= policy.retry_for;
        if !retry {
            if tried == 1 {
                return Err(err);
            }
            return Err(AttemptError {
                message: format!(
                    "{} (after {tried} attempts in {:.1} s)",
                    err.message,
                    started.elapsed().as_secs_f64()
                ),
                retryable: err.retryable,
            });
        }
        tracing::warn!(
            what,
            attempt = tried,
            error = %err,
            wait_ms = wait.as_millis() as u64,
            "transfer failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> TransferPolicy {
        TransferPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..TransferPolicy::upload()
        }
    }

    #[tokio::test]
    async fn retryable_failures_are_tried_again_until_success() {
        let mut calls = 0;
        let value = with_retries(&quick(), "test", || {
            calls += 1;
            let outcome = if calls < 3 {
                Err(AttemptError::from_status(StatusCode::SERVICE_UNAVAILABLE))
            } else {
                Ok(calls)
            };
            async move { outcome }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let mut calls = 0;
        let err = with_retries(&quick(), "test", || {
            calls += 1;
            async { Err::<(), _>(AttemptError::from_status(StatusCode::FORBIDDEN)) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(err.message, "HTTP 403 Forbidden");
    }

    #[tokio::test]
    async fn retries_stop_after_the_last_attempt_and_say_how_many() {
        let mut calls = 0;
        let err = with_retries(&quick(), "test", || {
            calls += 1;
            async { Err::<(), _>(AttemptError::from_status(StatusCode::BAD_GATEWAY)) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 3);
        assert!(
            err.message
                .starts_with("HTTP 502 Bad Gateway (after 3 attempts in "),
            "{}",
            err.message
        );
        assert!(err.retryable, "the last failure was a transient one");
    }

    #[tokio::test]
    async fn retries_stop_once_their_time_is_up_whatever_attempts_are_left() {
        let policy = TransferPolicy {
            attempts: u32::MAX,
            retry_for: Duration::from_millis(300),
            base_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(40),
            ..TransferPolicy::download()
        };
        let started = std::time::Instant::now();
        let mut calls = 0;
        let err = with_retries(&policy, "test", || {
            calls += 1;
            async { Err::<(), _>(AttemptError::from_status(StatusCode::SERVICE_UNAVAILABLE)) }
        })
        .await
        .unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            elapsed <= Duration::from_millis(300) + Duration::from_millis(100),
            "{elapsed:?}"
        );
        assert!((5..=9).contains(&calls), "{calls} attempts");
        assert!(err.retryable);
    }

    #[test]
    fn a_download_rides_out_an_outage_of_several_seconds() {
        let policy = TransferPolicy::download();
        assert_eq!(policy.retry_for, DEFAULT_DOWNLOAD_RETRY);
        // The waits alone, jitter aside, pass 5 s well before the budget ends.
        let waited: Duration = (1..=6).map(|retry| policy.delay_before_retry(retry)).sum();
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
        assert!(waited < DEFAULT_DOWNLOAD_RETRY, "{waited:?}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = TransferPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            ..TransferPolicy::upload()
        };
        let first = policy.delay_before_retry(1);
        let second = policy.delay_before_retry(2);
        let fifth = policy.delay_before_retry(5);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        assert!(second >= Duration::from_millis(200) && second <= Duration::from_millis(250));
        assert!(fifth >= Duration::from_millis(300) && fifth <= Duration::from_millis(375));
    }
}
