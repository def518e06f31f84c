//! A deadline on every cache call, whatever the implementation behind it.
//!
//! A cache that hangs (a Redis behind a dropped connection, a full TCP window) must not
//! hang the worker announcing a status or the API serving a read: the store is the
//! truth, so giving up on the cache is always allowed. This wrapper turns a call that
//! outlives its deadline into [`CacheError::Timeout`] and counts it. A subscription's
//! setup is bounded the same way; its live waits are not (an agent may be quiet for
//! minutes), so implementations bound the round trips behind them themselves.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::counters::counters;
use crate::cache::{CacheError, EventStream, RunEvent, StatusCache, WindowHits};
use crate::task::{TaskId, TaskStatus};

/// Any [`StatusCache`], with each call cut off after `limit`.
#[derive(Clone)]
pub struct TimeLimitedCache {
    inner: Arc<dyn StatusCache>,
    limit: Duration,
}

impl std::fmt::Debug for TimeLimitedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeLimitedCache")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl TimeLimitedCache {
    pub fn new(inner: Arc<dyn StatusCache>, limit: Duration) -> Self {
        Self { inner, limit }
    }

    async fn bounded<T>(
        &self,
        context: &'static str,
        call: impl Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        match tokio::time::timeout(self.limit, call).await {
            Ok(result) => result,
            Err(_) => {
                counters().timed_out();
                Err(CacheError::Timeout {
                    context: context.to_string(),
                    after: self.limit,
                })
            }
        }
    }
}

#[async_trait]
impl StatusCache for TimeLimitedCache {
    async fn set_status(&self, id: TaskId, status: TaskStatus) -> Result<(), CacheError> {
        self.bounded("set_status", self.inner.set_status(id, status))
            .await
    }

    async fn status(&self, id: TaskId) -> Result<Option<TaskStatus>, CacheError> {
        self.bounded("status", self.inner.status(id)).await
    }

    async fn publish_batch(
        &self,
        id: TaskId,
        events: Vec<serde_json::Value>,
    ) -> Result<Range<u64>, CacheError> {
        self.bounded("publish", self.inner.publish_batch(id, events))
            .await
    }

    async fn publish_run_events(
        &self,
        id: TaskId,
        run: &str,
        events: Vec<RunEvent>,
    ) -> Result<Range<u64>, CacheError> {
        self.bounded("publish", self.inner.publish_run_events(id, run, events))
            .await
    }

    async fn count_hit(&self, key: &str, window: Duration) -> Result<WindowHits, CacheError> {
        self.bounded("count_hit", self.inner.count_hit(key, window))
            .await
    }

    async fn subscribe(&self, id: TaskId, from_seq: u64) -> Result<EventStream, CacheError> {
        self.bounded("subscribe", self.inner.subscribe(id, from_seq))
            .await
    }

    async fn close(&self, id: TaskId) -> Result<(), CacheError> {
        self.bounded("close", self.inner.close(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache whose every call waits forever: what a hung connection looks like from
    /// here. (A unit test of the deadline; the Redis cache's own fault tests stop a real
    /// server.)
    struct Hung;

    #[async_trait]
    impl StatusCache for Hung {
        async fn set_status(&self, _: TaskId, _: TaskStatus) -> Result<(), CacheError> {
            std::future::pending().await
        }
        async fn status(&self, _: TaskId) -> Result<Option<TaskStatus>, CacheError> {
            std::future::pending().await
        }
        async fn publish_batch(
            &self,
            _: TaskId,
            _: Vec<serde_json::Value>,
        ) -> Result<Range<u64>, CacheError> {
            std::future::pending().await
        }
        async fn publish_run_events(
            &self,
            _: TaskId,
            _: &str,
            _: Vec<RunEvent>,
        ) -> Result<Range<u64>, CacheError> {
            std::future::pending().await
        }
        async fn count_hit(&self, _: &str, _: Duration) -> Result<WindowHits, CacheError> {
            std::future::pending().await
        }
        async fn subscribe(&self, _: TaskId, _: u64) -> Result<EventStream, CacheError> {
            std::future::pending().await
        }
        async fn close(&self, _: TaskId) -> Result<(), CacheError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_call_to_a_hung_cache_ends_in_a_transient_timeout() {
        let limit = Duration::from_millis(250);
        let cache = TimeLimitedCache::new(Arc::new(Hung), limit);
        let id = TaskId::new();
        let before = counters().snapshot().timeouts;
        let errors = [
            cache.set_status(id, TaskStatus::Queued).await.err(),
            cache.status(id).await.err(),
            cache.publish(id, serde_json::json!({})).await.err(),
            cache.publish_run_events(id, "run", Vec::new()).await.err(),
            cache.count_hit("key", limit).await.err(),
            cache.subscribe(id, 0).await.err(),
            cache.close(id).await.err(),
        ];
        for error in errors {
            let error = error.expect("a hung call fails");
            assert!(
                matches!(error, CacheError::Timeout { after, .. } if after == limit),
                "{error}"
            );
            assert!(error.is_transient());
        }
        assert!(counters().snapshot().timeouts >= before + 7);
    }

    #[tokio::test]
    async fn calls_that_answer_in_time_pass_through() {
        let inner = Arc::new(crate::cache::MemoryStatusCache::new());
        let cache = TimeLimitedCache::new(inner, Duration::from_secs(5));
        let id = TaskId::new();
        cache.set_status(id, TaskStatus::Queued).await.unwrap();
        assert_eq!(cache.status(id).await.unwrap(), Some(TaskStatus::Queued));
        assert_eq!(cache.publish(id, serde_json::json!(1)).await.unwrap(), 0);
    }
}
