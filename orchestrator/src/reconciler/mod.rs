//! The reconciler: finds tasks that fell between the cracks and drives them on.
//!
//! Level-triggered, like a Kubernetes controller: each pass reads the world (the store's
//! repair queries, the runner's view of each run), compares it with where each task
//! should be, and takes one step per task. It keeps no memory it depends on, so any
//! number of reconcilers may run, and a worker or the whole server may die at any line.
//!
//! Each kind of repair has its own bounded query ([`Due`]), oldest first, so no kind can
//! starve another, and every step moves its task out of its query's reach (re-sent,
//! re-leased, finished), so one pass's batch is never the next pass's batch again:
//! - **outbox**: a created task whose message may never have been sent: send it;
//! - **queued**: `QUEUED` so long its message may be lost: send it again;
//! - **preparing** / **running**: a claimed task whose lease expired. The reconciler
//!   touches such a task only then, and only after taking the lease over itself (so no
//!   two reconcilers act on it, and the old holder's late writes fail); then
//!   [`decide`] says what to do: retry a preparation under a new attempt (bounded),
//!   hand a run that goes on to a worker to re-attach, finish a run that is over or
//!   gone, or stop one past its deadline.
//!
//! - **pull requests**: one `OPENING` longer than `stale_after_secs` (its opener died),
//!   or still `REQUESTED` that long after its task finished: claimed and opened as the
//!   worker would have;
//! - **expired**: a task finished longer ago than the retention period: its files (the
//!   workspace tarball, the outputs with the agent's log, the uploaded zip, anything the
//!   runner kept) are deleted and the row is marked purged; the row itself stays.
//!
//! Runs no task row names (an old attempt's, a finished task's) are removed
//! ([`Runner::list`] by label). A store call that fails for a passing reason (a dropped
//! connection, a deadlock, a busy database) is tried again a few times within the pass
//! ([`REPAIR_TRIES`]), and the fenced writes of a repair as patiently as a worker's; what
//! still fails is logged and counted for that one task and retried by the next pass,
//! never stopping this one.

mod decide;
mod repair;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics;
use crate::runner::{LABEL_MANAGED_BY, MANAGED_BY, RunInfo};
use crate::services::Services;
use crate::store::Due;
use crate::store::retry::{RetryPolicy, retry};
use crate::task::TaskId;

pub use decide::{Action, Observation, decide};

/// Tries for one of the reconciler's own store calls that failed transiently: short,
/// because the next pass tries again anyway and a pass should not stall on one task.
pub const REPAIR_TRIES: RetryPolicy = RetryPolicy {
    attempts: 4,
    first_delay: std::time::Duration::from_millis(50),
    max_delay: std::time::Duration::from_millis(500),
};

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    /// The step taken for each task that needed one.
    pub taken: Vec<(TaskId, Step)>,
    /// Tasks (or queries) whose repair failed this pass, and why; the next pass retries.
    pub failures: Vec<(Option<TaskId>, String)>,
}

impl PassReport {
    /// The steps taken for `id`.
    pub fn steps_for(&self, id: TaskId) -> Vec<&Step> {
        self.taken
            .iter()
            .filter(|(taken, _)| *taken == id)
            .map(|(_, step)| step)
            .collect()
    }
}

/// A step the reconciler took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Sent the message of a task whose outbox entry was left.
    Relayed,
    /// Sent again the message of a task `QUEUED` too long.
    Requeued,
    /// Acted on a claimed task whose lease expired.
    Repaired(Action),
    /// Removed a run no task row names.
    RemovedOrphan(String),
    /// Deleted a finished task's files after the retention period.
    Purged,
    /// Opened (or tried to open) a pull request nobody was opening; its new state.
    PullRequest(String),
}

impl Step {
    /// The step's kind, a fixed word (the metrics' label).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Relayed => "relayed",
            Step::Requeued => "requeued",
            Step::Repaired(action) => match action {
                Action::Retry => "retried",
                Action::Adopt => "handed_over",
                Action::Fail(_) => "failed",
                Action::Finish(_) => "finished",
                Action::DeadlineExceeded => "deadline_exceeded",
                Action::Later(_) => "later",
                Action::RecordLaunch => "recorded_launch",
            },
            Step::RemovedOrphan(_) => "removed_orphan",
            Step::Purged => "purged",
            Step::PullRequest(_) => "pull_request",
        }
    }
}

/// The effectful loop around [`decide`].
#[derive(Debug)]
pub struct Reconciler {
    services: Services,
    /// This reconciler's id, for the leases it takes.
    id: String,
    leases: AtomicU64,
    /// Where each finished pass is recorded, for readiness.
    health: Arc<Health>,
}

impl Reconciler {
    pub fn new(services: Services) -> Self {
        let id = format!(
            "reconciler/{}/{:04x}",
            std::process::id(),
            fastrand::u16(..)
        );
        Self {
            services,
            id,
            leases: AtomicU64::new(0),
            health: Arc::new(Health::default()),
        }
    }

    /// Records each finished pass in `health` (which the readiness check reads).
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = health;
        self
    }

    fn next_holder(&self) -> String {
        let n = self.leases.fetch_add(1, Ordering::Relaxed);
        format!("{}/{n}", self.id)
    }

    /// Runs a pass every `interval` until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.services.config.reconciler.interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let started = std::time::Instant::now();
            let report = self.pass().await;
            self.health.pass_done();
            let outcome = if report.failures.is_empty() {
                "ok"
            } else {
                "partial"
            };
            let registry = metrics::global();
            registry.inc(
                "orchestrator_reconciler_passes_total",
                &[("outcome", outcome)],
            );
            registry.observe(
                "orchestrator_phase_seconds",
                &[("phase", "reconciler_pass")],
                started.elapsed(),
            );
            for (_, step) in &report.taken {
                registry.inc(
                    "orchestrator_reconciler_actions_total",
                    &[("action", step.kind())],
                );
            }
            if !report.failures.is_empty() {
                tracing::warn!(
                    failures = report.failures.len(),
                    "reconciler pass left some repairs for the next one"
                );
            }
        }
    }

    /// Starts [`Reconciler::run`] on the runtime.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    /// One pass over every kind of repair.
    pub async fn pass(&self) -> PassReport {
        let config = &self.services.config.reconciler;
        let mut report = PassReport::default();
        let mut kinds = vec![
            Due::Outbox {
                older_than: std::time::Duration::from_secs(config.pending_after_secs),
            },
            Due::Queued {
                older_than: std::time::Duration::from_secs(config.queued_after_secs),
            },
            Due::Preparing,
            Due::Running,
        ];
        if let Some(older_than) = config.retention() {
            kinds.push(Due::Expired { older_than });
        }
        kinds.push(Due::PullRequests {
            stale: self.services.config.pull_requests.stale_after(),
        });
        for due in kinds {
            let store = &self.services.store;
            let found = retry(REPAIR_TRIES, "finding tasks to repair", || {
                store.due(due, config.batch)
            })
            .await;
            let ids = match found {
                Ok(ids) => ids,
                Err(err) => {
                    report.failures.push((None, format!("{due:?}: {err}")));
                    continue;
                }
            };
            for id in ids {
                match self.repair(due, id).await {
                    Ok(Some(step)) => {
                        tracing::info!(task_id = %id, ?step, "reconciled");
                        report.taken.push((id, step));
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(task_id = %id, error = %err, "repair failed; next pass retries");
                        report.failures.push((Some(id), err));
                    }
                }
            }
        }
        self.remove_orphans(&mut report).await;
        report
    }

    /// Removes runs that no task row names any more.
    async fn remove_orphans(&self, report: &mut PassReport) {
        let selector = BTreeMap::from([(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string())]);
        let runs = match self.services.runner.list(&selector).await {
            Ok(runs) => runs,
            Err(err) => {
                report.failures.push((None, format!("listing runs: {err}")));
                return;
            }
        };
        for run in runs {
            // A run without a task label was not started by this service's worker.
            let Some(id) = run.task_id() else { continue };
            match self.is_orphan(id, &run).await {
                Ok(false) => {}
                Ok(true) => match self.services.runner.cancel(&run.handle).await {
                    Ok(()) => {
                        tracing::info!(task_id = %id, run = %run.handle, "removed a run no task names");
                        report.taken.push((id, Step::RemovedOrphan(run.handle.0)));
                    }
                    Err(err) => report.failures.push((Some(id), err.to_string())),
                },
                Err(err) => report.failures.push((Some(id), err)),
            }
        }
    }

    /// Whether no live task names `run`: its task is gone or over, or it belongs to an
    /// attempt the task left behind. (A run's name is saved in the row before the run is
    /// launched, so a live run always has a row naming it.)
    async fn is_orphan(&self, id: TaskId, run: &RunInfo) -> Result<bool, String> {
        let store = &self.services.store;
        let task = retry(REPAIR_TRIES, "reading a run's task", || store.get(id))
            .await
            .map_err(|err| err.to_string())?;
        Ok(match task {
            None => true,
            Some(task) => {
                task.status.is_terminal()
                    || task.runner_ref.as_deref() != Some(run.handle.0.as_str())
            }
        })
    }
}
