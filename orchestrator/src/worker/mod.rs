//! The worker: takes task ids off the queue and runs each task to a terminal status.
//!
//! `concurrency` loops each receive a delivery and carry its task through claim
//! (`QUEUED -> PROCESSING`, a compare-and-set, so a duplicate delivery is skipped),
//! preparation (`DOWNLOADING_CODE`: clone or unzip, pack, upload), the run
//! (`RUNNING_AGENT`: launch with signed URLs, stream events to the cache, notice a cancel)
//! and the finish (`UPLOADING_RESULTS`, then `COMPLETED` or `FAILED` from the exit code and
//! `result.json`).
//!
//! Shutdown: once the token fires no new delivery is taken; running tasks may go on for
//! the configured grace, then their runs are stopped and their deliveries left unacked,
//! for the reconciler to finish after the restart.

mod finish;
mod launch;
mod lifecycle;
mod prepare;
mod run_task;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::queue::QueueError;
use crate::services::Services;

pub use finish::{MAX_RESULT_BYTES, Outcome, RunEnd, finish_run, outcome, output_key, read_result};
pub use launch::{OUTPUT_NAMES, agent_env, task_timeout, workspace_key};
pub use lifecycle::{Stop, advance, announce};
pub use prepare::PrepareError;

/// The worker pool over one set of services.
#[derive(Debug, Clone)]
pub struct Worker {
    services: Services,
}

impl Worker {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    /// Runs the loops until `shutdown` fires (or the queue closes), then winds down as
    /// described above. Returns once every loop has stopped.
    pub async fn run(self, shutdown: CancellationToken) {
        let concurrency = self.services.config.worker.concurrency.max(1);
        let abort = CancellationToken::new();
        let mut loops = JoinSet::new();
        for _ in 0..concurrency {
            loops.spawn(receive_loop(
                self.services.clone(),
                shutdown.clone(),
                abort.clone(),
            ));
        }
        tracing::info!(concurrency, "worker started");
        tokio::select! {
            _ = join_all(&mut loops) => {
                tracing::info!("worker stopped: the queue closed");
                return;
            }
            _ = shutdown.cancelled() => {}
        }
        let grace = self.services.config.worker.shutdown_grace();
        tracing::info!(?grace, "worker shutting down; letting running tasks finish");
        if tokio::time::timeout(grace, join_all(&mut loops))
            .await
            .is_err()
        {
            tracing::warn!("grace period over; stopping the remaining runs");
            abort.cancel();
            join_all(&mut loops).await;
        }
        tracing::info!("worker stopped");
    }

    /// Starts [`Worker::run`] on the runtime.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
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

async fn receive_loop(services: Services, shutdown: CancellationToken, abort: CancellationToken) {
    loop {
        let received = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            received = services.queue.receive() => received,
        };
        match received {
            Ok(delivery) => run_task::process(&services, delivery, &abort).await,
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
