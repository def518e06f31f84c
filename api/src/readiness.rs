//! What `/readyz` checks: what this process's role needs to do its work.
//!
//! Every role: the task store answers, and the data folder's disk has room (SQLite, the
//! blob folder and the run folders write there). A role that runs agents also needs its
//! worker loops running and its reconciler passing: a loop that died and was not
//! replaced, or a reconciler stuck in a pass, makes the process unready so an
//! orchestrator (Kubernetes, a load balancer) stops counting on it. The answer is 200
//! `ready`, or 503 with the first failed check's reason as the JSON error message.
//!
//! The queue is asked too (a Kafka metadata fetch; the embedded queue lives in this
//! process and always answers). A process that runs agents cannot work without it and
//! is unready; an api process stays ready without it, degraded: a task stored while the
//! queue is down waits in the outbox and is relayed once it is back. The status cache is
//! probed but never makes the process unready: without it the service is slower, not
//! broken. Every probe is bounded by [`PROBE_TIMEOUT`], so a backend that hangs makes
//! the answer a failure, not a hung probe. The answer is `ready`, or `ready (degraded:
//! ...)` naming what is slower.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orchestrator::TaskId;
use orchestrator::health::Health;

use crate::error::ApiError;
use crate::state::AppState;

/// A reconciler counts as stuck once no pass ended for this many intervals (and at
/// least [`MIN_PASS_SLACK`]).
const PASS_INTERVALS: u32 = 5;
const MIN_PASS_SLACK: Duration = Duration::from_secs(60);

/// Longest any one probe (store, queue, cache) may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The checks this process runs.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// The worker's and reconciler's liveness, where this process runs them.
    pub health: Option<Arc<Health>>,
    /// How often the reconciler passes (for "its last pass is recent").
    pub reconcile_interval: Duration,
    /// The folder whose disk must keep `min_free_bytes` free.
    pub data_dir: Option<PathBuf>,
    pub min_free_bytes: u64,
}

impl Readiness {
    /// `Err(reason)` for the first check that fails.
    pub fn check_background(&self) -> Result<(), String> {
        if let Some(health) = &self.health {
            if health.loops() == 0 {
                return Err("no worker loop is running".into());
            }
            let allowed = (self.reconcile_interval * PASS_INTERVALS).max(MIN_PASS_SLACK);
            let since = health.since_last_pass();
            if since > allowed {
                return Err(format!(
                    "the reconciler has not finished a pass for {} s",
                    since.as_secs()
                ));
            }
        }
        if let Some(dir) = &self.data_dir
            && self.min_free_bytes > 0
        {
            let free = free_bytes(dir)
                .map_err(|err| format!("cannot read the free space of the data folder: {err}"))?;
            if free < self.min_free_bytes {
                return Err(format!(
                    "the data folder's disk has {} MiB free, under the {} MiB minimum",
                    free >> 20,
                    self.min_free_bytes >> 20
                ));
            }
        }
        Ok(())
    }
}

/// Bytes an unprivileged process may still write on `dir`'s file system. (The field
/// types differ between platforms; `u64::from` is a no-op on Linux.)
#[allow(clippy::useless_conversion)]
fn free_bytes(dir: &std::path::Path) -> Result<u64, nix::Error> {
    let stat = nix::sys::statvfs::statvfs(dir)?;
    Ok(u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size())))
}

/// `probe`'s answer, or a timeout error once [`PROBE_TIMEOUT`] passed.
async fn bounded<T, E: std::fmt::Display>(
    probe: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(answer) => answer.map_err(|err| err.to_string()),
        Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    }
}

/// Whether this process needs the queue to do its work (it runs agents), rather than
/// only publishing to it (what an outage delays, as the outbox keeps the tasks).
fn needs_queue(state: &AppState) -> bool {
    state.readiness.health.is_some()
}

/// Every check, the store's and the queue's included.
pub async fn check(state: &AppState) -> Result<(), ApiError> {
    let nil = TaskId(uuid::Uuid::nil());
    if let Err(err) = bounded(state.services.store.get(nil)).await {
        tracing::warn!(error = %err, "readiness check failed: the task store");
        return Err(ApiError::Unavailable(
            "the task store is unreachable".into(),
        ));
    }
    if needs_queue(state)
        && let Some(queue) = &state.services.queue
        && let Err(err) = bounded(queue.ping(PROBE_TIMEOUT)).await
    {
        tracing::warn!(error = %err, "readiness check failed: the queue");
        return Err(ApiError::Unavailable(
            "the queue is unreachable; this process cannot take tasks".into(),
        ));
    }
    state.readiness.check_background().map_err(|reason| {
        tracing::warn!(%reason, "not ready");
        ApiError::Unavailable(reason)
    })
}

/// What works but slower, if anything: a status cache that does not answer (Redis
/// down) leaves status reads and event streams to the store; a queue that does not
/// answer, in a process that only publishes to it, leaves new tasks in the outbox.
pub async fn degraded(state: &AppState) -> Option<String> {
    let mut slower = Vec::new();
    let nil = TaskId(uuid::Uuid::nil());
    if let Err(err) = bounded(state.services.cache.status(nil)).await {
        tracing::warn!(error = %err, "the status cache does not answer; reading from the store");
        slower.push(
            "the status cache is unreachable; status and events are read from the task store",
        );
    }
    if !needs_queue(state)
        && let Some(queue) = &state.services.queue
        && let Err(err) = bounded(queue.ping(PROBE_TIMEOUT)).await
    {
        tracing::warn!(error = %err, "the queue does not answer; new tasks wait in the outbox");
        slower.push(
            "the queue is unreachable; new tasks wait in the outbox and are sent once it is back",
        );
    }
    (!slower.is_empty()).then(|| slower.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_without_worker_loops_is_not_ready() {
        let readiness = Readiness {
            health: Some(Arc::new(Health::default())),
            reconcile_interval: Duration::from_secs(10),
            ..Readiness::default()
        };
        let err = readiness.check_background().unwrap_err();
        assert!(err.contains("worker loop"), "{err}");
        let health = readiness.health.clone().unwrap();
        let _alive = health.loop_started();
        assert_eq!(readiness.check_background(), Ok(()));
    }

    #[test]
    fn a_disk_under_the_minimum_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let mut readiness = Readiness {
            data_dir: Some(dir.path().to_path_buf()),
            min_free_bytes: u64::MAX,
            ..Readiness::default()
        };
        let err = readiness.check_background().unwrap_err();
        assert!(err.contains("MiB free"), "{err}");
        readiness.min_free_bytes = 1;
        assert_eq!(readiness.check_background(), Ok(()));
    }
}
