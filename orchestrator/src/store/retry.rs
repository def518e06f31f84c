//! Trying a store call again when it failed for a reason that passes.
//!
//! A task in flight must not fail because the database blinked (a dropped connection, a
//! deadlock victim, a lock wait, SQLite busy): such calls are retried with exponential
//! backoff and jitter, a bounded number of times. Anything else returns at once.
//!
//! A retried compare-and-set may have been applied by the attempt whose answer was lost;
//! callers that care check the row when the retry reports a conflict.

use std::future::Future;
use std::time::Duration;

use super::error::{StoreError, TransitionError};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubles on each retry, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// About 12 seconds of patience: longer than a failover or a lock wait timeout.
    fn default() -> Self {
        Self {
            attempts: 7,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: 1,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    fn delay(&self, retry: u32) -> Duration {
        let base = self
            .first_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        // Up to a quarter of jitter, so processes that failed together do not retry in step.
        let quarter = u64::try_from(base.as_millis() / 4).unwrap_or(u64::MAX);
        base + Duration::from_millis(fastrand::u64(0..=quarter))
    }
}

/// An error that can say whether trying again may help.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for StoreError {
    fn is_transient(&self) -> bool {
        StoreError::is_transient(self)
    }
}

impl Transient for TransitionError {
    fn is_transient(&self) -> bool {
        TransitionError::is_transient(self)
    }
}

/// Runs `call` until it succeeds, fails for good, or `policy` runs out of tries.
pub async fn retry<T, E, F, Fut>(policy: RetryPolicy, what: &str, mut call: F) -> Result<T, E>
where
    E: Transient + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut tried = 1;
    loop {
        match call().await {
            Err(err) if err.is_transient() && tried < policy.attempts => {
                let delay = policy.delay(tried);
                tracing::warn!(error = %err, retry_in = ?delay, tried, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
                tried += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn busy() -> StoreError {
        StoreError::unavailable("do it", std::io::Error::other("busy"))
    }

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, StoreError> = retry(quick(5), "test", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(busy()),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_errors_return_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), StoreError> = retry(quick(5), "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::query("do it", std::io::Error::other("syntax")))
        })
        .await;
        assert!(matches!(result, Err(StoreError::Query { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retries_stop_after_the_policys_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<(), StoreError> = retry(quick(3), "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(busy())
        })
        .await;
        assert!(result.unwrap_err().is_transient());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = RetryPolicy {
            attempts: 10,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
        };
        let within = |retry, low, high| {
            let delay = policy.delay(retry).as_millis();
            assert!((low..=high).contains(&delay), "retry {retry}: {delay} ms");
        };
        within(1, 100, 125);
        within(2, 200, 250);
        within(3, 400, 500);
        within(6, 400, 500);
    }
}
