//! Process-wide counts of what the cache seam lost or worked around, for `/metrics`.
//!
//! The cache is allowed to fail (the store is the truth), so its failures must at least
//! be visible: events dropped rather than block the worker, publishes that failed, calls
//! that timed out, SSE streams that fell back to the store. Counters only go up; they are
//! process-wide like a Prometheus default registry, because the places that count
//! (publishers, SSE streams, the time limit) come and go with tasks and requests.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters; read them with [`CacheCounters::snapshot`].
#[derive(Debug, Default)]
pub struct CacheCounters {
    events_dropped: AtomicU64,
    publish_failures: AtomicU64,
    timeouts: AtomicU64,
    follow_fallbacks: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCountersSnapshot {
    /// Agent events not published because the publisher's buffer was full or the cache
    /// kept failing (the trajectory file still has them).
    pub events_dropped: u64,
    /// Publish calls that failed (each may carry several events).
    pub publish_failures: u64,
    /// Calls cut off by [`TimeLimitedCache`](super::TimeLimitedCache).
    pub timeouts: u64,
    /// Event streams that fell back to status from the store.
    pub follow_fallbacks: u64,
}

impl CacheCounters {
    pub(crate) fn events_dropped(&self, n: u64) {
        self.events_dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn publish_failed(&self) {
        self.publish_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn timed_out(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fell_back(&self) {
        self.follow_fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CacheCountersSnapshot {
        CacheCountersSnapshot {
            events_dropped: self.events_dropped.load(Ordering::Relaxed),
            publish_failures: self.publish_failures.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            follow_fallbacks: self.follow_fallbacks.load(Ordering::Relaxed),
        }
    }
}

/// This process's cache counters.
pub fn counters() -> &'static CacheCounters {
    static COUNTERS: OnceLock<CacheCounters> = OnceLock::new();
    COUNTERS.get_or_init(CacheCounters::default)
}
