//! The worker: takes task ids off the queue and runs each task to a terminal status.
//!
//! `concurrency` loops each receive a message and turn it into a held task ([`claim`]:
//! claim `QUEUED -> PROCESSING` under a lease, or take over a run nobody watches), ack
//! the message at once, then carry the task through preparation (`DOWNLOADING_CODE`:
//! clone or unzip, pack, upload), the run (`RUNNING_AGENT`: launch under a name saved
//! first, stream events to the cache, keep the lease, notice a cancel, enforce the
//! deadline) and the finish (`UPLOADING_RESULTS`, then `COMPLETED` or `FAILED` from the
//! exit code and `result.json`). Every write is fenced on the lease ([`lease`]).
//!
//! A loop that panics is replaced, so a bad task never shrinks the pool; the task it
//! held is picked up again when its lease expires.
//!
//! Shutdown: once the token fires no new message is taken; running tasks may go on for
//! the configured grace, then this worker detaches from their runs (which go on) and
//! releases their leases, so another worker, or this one restarted, re-attaches at once.

mod best_of;
mod claim;
mod drive;
mod feed;
mod finish;
mod launch;
mod lease;
mod prepare;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::queue::QueueError;
use crate::services::Services;
use crate::store::{Lease, StoreError, TransitionError};
use crate::task::{Task, TaskId, TaskStatus};

pub use best_of::{candidate, candidates};
pub use feed::OutboxFeed;
pub use finish::{
    MAX_RESULT_BYTES, Outcome, ResultRead, RunEnd, outcome, output_key, read_result, run_output_key,
};
pub use launch::{
    CHECK_LOG, OUTPUT_NAMES, SECRET_ENV, STEP_DIFF, agent_env, task_timeout, workspace_key,
};
pub use prepare::PrepareError;
pub(crate) use prepare::clone_options;

pub(crate) use drive::{fail, stop_run};
pub(crate) use finish::finish_run;
pub(crate) use launch::deadline_in;
pub(crate) use lease::Held;

/// Why a held task is no longer this worker's to move.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// Someone else moved it (a cancel, the reconciler), took it over, or it vanished;
    /// leave it alone. `status` is where it is now, when known.
    #[error("task {id} was moved by someone else ({reason})")]
    Moved {
        id: TaskId,
        status: Option<TaskStatus>,
        reason: String,
    },
    /// This worker cannot go on with it for now (a blob store down); the task is
    /// released for a later try.
    #[error("task {id} cannot go on for now: {reason}")]
    Later { id: TaskId, reason: String },
    /// The store failed past its retries; the task stays where it was.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Stop {
    pub(crate) fn from_transition(id: TaskId, err: TransitionError) -> Self {
        match err {
            TransitionError::Store(err) => Stop::Store(err),
            TransitionError::Conflict { actual, .. }
            | TransitionError::LeaseLost { status: actual, .. } => Stop::Moved {
                id,
                status: Some(actual),
                reason: err.to_string(),
            },
            other => Stop::Moved {
                id,
                status: None,
                reason: other.to_string(),
            },
        }
    }

    /// Whether the task is over (cancelled, or finished by someone else): its run, if
    /// any, must stop.
    pub fn task_is_over(&self) -> bool {
        matches!(self, Stop::Moved { status: Some(status), .. } if status.is_terminal())
    }
}

/// Why a held task's work stopped before its end.
pub(crate) enum Interrupted {
    Stop(Stop),
    Shutdown,
}

/// The worker pool over one set of services.
#[derive(Debug)]
pub struct Worker {
    services: Services,
    /// This process's worker id: host, pid and a random part.
    id: String,
    leases: AtomicU64,
    /// Where the running loops are counted, for readiness.
    health: Arc<Health>,
}

impl Worker {
    pub fn new(services: Services) -> Self {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| "host".to_string());
        let id = format!("{host}/{}/{:04x}", std::process::id(), fastrand::u16(..));
        Self {
            services,
            id,
            leases: AtomicU64::new(0),
            health: Arc::new(Health::default()),
        }
    }

    /// Counts the running loops in `health` (which the readiness check reads).
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = health;
        self
    }

    /// A holder name for one lease: unique per acquisition.
    fn next_holder(&self) -> String {
        let n = self.leases.fetch_add(1, Ordering::Relaxed);
        format!("{}/{n}", self.id)
    }

    /// Runs the loops until `shutdown` fires (or the queue closes), then winds down as
    /// described above. Returns once every loop has stopped.
    pub async fn run(self, shutdown: CancellationToken) {
        let concurrency = self.services.config.worker.concurrency.max(1);
        let worker = Arc::new(self);
        let abort = CancellationToken::new();
        let mut loops = JoinSet::new();
        for _ in 0..concurrency {
            loops.spawn(Arc::clone(&worker).receive_loop(shutdown.clone(), abort.clone()));
        }
        tracing::info!(concurrency, worker = %worker.id, "worker started");
        loop {
            tokio::select! {
                joined = loops.join_next() => match joined {
                    None => {
                        tracing::info!("worker stopped: the queue closed");
                        return;
                    }
                    Some(Err(err)) if err.is_panic() && !shutdown.is_cancelled() => {
                        tracing::error!(error = %err, "a worker loop panicked; starting a new one");
                        loops.spawn(Arc::clone(&worker).receive_loop(shutdown.clone(), abort.clone()));
                    }
                    Some(_) => {}
                },
                _ = shutdown.cancelled() => break,
            }
        }
        let grace = worker.services.config.worker.shutdown_grace();
        tracing::info!(?grace, "worker shutting down; letting running tasks finish");
        if tokio::time::timeout(grace, join_all(&mut loops))
            .await
            .is_err()
        {
            tracing::warn!("grace period over; letting go of the remaining runs");
            abort.cancel();
            join_all(&mut loops).await;
        }
        tracing::info!("worker stopped");
    }

    /// Starts [`Worker::run`] on the runtime.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    async fn receive_loop(self: Arc<Self>, shutdown: CancellationToken, abort: CancellationToken) {
        let _alive = self.health.loop_started();
        loop {
            let received = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                received = self.services.queue.receive() => received,
            };
            match received {
                Ok(delivery) => {
                    if let Some((task, lease)) = self.claim(delivery).await {
                        self.work(task, lease, &abort).await;
                    }
                }
                Err(QueueError::Closed) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "queue receive failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Carries a held task as far as it goes, and settles the lease.
    async fn work(&self, task: Task, lease: Lease, abort: &CancellationToken) {
        let id = task.id;
        let mut held = Held::new(&self.services, lease);
        match drive::drive(&self.services, task, &mut held, abort).await {
            Ok(()) => {}
            Err(Interrupted::Shutdown) => {
                tracing::info!(task_id = %id, "shutting down; task released for another worker");
                held.release().await;
            }
            Err(Interrupted::Stop(Stop::Moved { reason, .. })) => {
                tracing::info!(task_id = %id, %reason, "task moved elsewhere; this worker let go");
            }
            Err(Interrupted::Stop(stop @ (Stop::Later { .. } | Stop::Store(_)))) => {
                tracing::warn!(task_id = %id, error = %stop, "cannot go on with the task now; released for a later try");
                held.release().await;
            }
        }
    }
}

async fn join_all(loops: &mut JoinSet<()>) {
    while let Some(joined) = loops.join_next().await {
        if let Err(err) = joined
            && err.is_panic()
        {
            tracing::error!(error = %err, "a worker loop panicked");
        }
    }
}
