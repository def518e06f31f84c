//! What a readiness check needs to know about this process's background work: how many
//! worker loops are running, and when the reconciler last finished a pass.
//!
//! The worker and the reconciler write it as they go ([`Worker::with_health`],
//! [`Reconciler::with_health`]); the API's `/readyz` reads it. Plain atomics: reading
//! it costs nothing, and it says nothing about tasks (the store holds those).
//!
//! [`Worker::with_health`]: crate::worker::Worker::with_health
//! [`Reconciler::with_health`]: crate::reconciler::Reconciler::with_health

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::task::now_ms;

/// Shared by the worker and the reconciler of one process.
#[derive(Debug)]
pub struct Health {
    loops: AtomicUsize,
    /// ms since the epoch; 0 before the first pass.
    last_pass_ms: AtomicI64,
    started_ms: i64,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            loops: AtomicUsize::new(0),
            last_pass_ms: AtomicI64::new(0),
            started_ms: now_ms(),
        }
    }
}

/// Counts one running worker loop for as long as it lives (a panic included).
#[derive(Debug)]
pub struct LoopGuard<'a>(&'a Health);

impl Drop for LoopGuard<'_> {
    fn drop(&mut self) {
        self.0.loops.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Health {
    /// A worker loop starts; it counts until the guard is dropped.
    pub fn loop_started(&self) -> LoopGuard<'_> {
        self.loops.fetch_add(1, Ordering::Relaxed);
        LoopGuard(self)
    }

    /// Worker loops running now.
    pub fn loops(&self) -> usize {
        self.loops.load(Ordering::Relaxed)
    }

    /// The reconciler finished a pass.
    pub fn pass_done(&self) {
        self.last_pass_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Time since the last pass ended, or since this process started if none did yet.
    pub fn since_last_pass(&self) -> Duration {
        let last = match self.last_pass_ms.load(Ordering::Relaxed) {
            0 => self.started_ms,
            at => at,
        };
        Duration::from_millis(u64::try_from(now_ms().saturating_sub(last)).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_count_while_their_guards_live() {
        let health = Health::default();
        let a = health.loop_started();
        let b = health.loop_started();
        assert_eq!(health.loops(), 2);
        drop(a);
        assert_eq!(health.loops(), 1);
        drop(b);
        assert_eq!(health.loops(), 0);
    }

    #[test]
    fn a_pass_resets_the_time_since_the_last_one() {
        let health = Health {
            started_ms: now_ms() - 60_000,
            ..Health::default()
        };
        assert!(health.since_last_pass() >= Duration::from_secs(59));
        health.pass_done();
        assert!(health.since_last_pass() < Duration::from_secs(5));
    }
}
