//! What `/readyz` checks: what this process's role needs to do its work.
//!
//! Every role: the task store answers, and the data folder's disk has room (SQLite, the
//! blob folder and the run folders write there). A role that runs agents also needs its
//! worker loops running and its reconciler passing: a loop that died and was not
//! replaced, or a reconciler stuck in a pass, makes the process unready so an
//! orchestrator (Kubernetes, a load balancer) stops counting on it. The answer is 200
//! `ready`, or 503 with the first failed check's reason as the JSON error message.
//!
//! The queue has no check of its own: the embedded one lives in this process, and a
//! cluster queue's client reports its outages through the worker's receive errors (and
//! a task stored while it is down waits in the outbox). The status cache is probed but
//! never makes the process unready: without it the service is slower, not broken, and
//! `/readyz` says `ready (degraded: ...)`.

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

/// Every check, the store's included.
pub async fn check(state: &AppState) -> Result<(), ApiError> {
    state
        .services
        .store
        .get(TaskId(uuid::Uuid::nil()))
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "readiness check failed");
            ApiError::Unavailable("the task store is unreachable".into())
        })?;
    state.readiness.check_background().map_err(|reason| {
        tracing::warn!(%reason, "not ready");
        ApiError::Unavailable(reason)
    })
}

/// What works but slower, if anything: a status cache that does not answer (Redis
/// down) leaves status reads and event streams to the store.
pub async fn degraded(state: &AppState) -> Option<String> {
    match state.services.cache.status(TaskId(uuid::Uuid::nil())).await {
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(error = %err, "the status cache does not answer; reading from the store");
            Some(
                "the status cache is unreachable; status and events are read from the task \
                 store"
                    .to_string(),
            )
        }
    }
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
