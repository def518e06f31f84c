//! From a queue message to a task this worker holds.
//!
//! The message only names a task; the row says what it needs:
//! - `QUEUED`: claim it (`PROCESSING`, next attempt);
//! - `PROCESSING` / `DOWNLOADING_CODE` with no live lease (its worker died or let go
//!   before the agent started): claim it again under the next attempt, unless the
//!   attempts are used up (the reconciler then fails it, saying why). If the row names
//!   a run the runner knows, its worker died between launching it and recording the
//!   launch: take it over under the same attempt and re-attach, as the reconciler does,
//!   for a new claim would start the agent a second time;
//! - `RUNNING_AGENT` / `UPLOADING_RESULTS` with no live lease: take it over under the
//!   same attempt and re-attach to its run;
//! - anything else (held by someone, finished): nothing to do.
//!
//! The message is acked as soon as the claim is durable, or the task is found not to
//! need it; it is never held for the length of a run. Only when the store cannot even
//! be read is it nacked, to come back after a delay.

use super::Worker;
use crate::queue::{Delivery, retry_delay};
use crate::runner::{RunHandle, RunStatus};
use crate::store::retry::{RetryPolicy, retry};
use crate::store::{Lease, TransitionError};
use crate::task::{Task, TaskId, TaskStatus};
use crate::tasks::announce;

/// What a delivery turned into.
pub(crate) enum Claimed {
    /// This worker holds the task now; the message is acked.
    Held(Box<Task>, Lease),
    /// The task does not need this worker; the message is acked.
    Nothing,
    /// The store failed; the message comes back.
    Later,
}

impl Worker {
    /// Claims (or takes over) the delivery's task and settles the delivery.
    pub(crate) async fn claim(&self, delivery: Delivery) -> Option<(Task, Lease)> {
        let id = delivery.message.task_id;
        match self.try_claim(id).await {
            Claimed::Held(task, lease) => {
                ack(delivery, id).await;
                Some((*task, lease))
            }
            Claimed::Nothing => {
                ack(delivery, id).await;
                None
            }
            Claimed::Later => {
                // Not in a hurry to see it again: the store just failed.
                let delay = retry_delay(delivery.attempt);
                if let Err(err) = delivery.nack(delay).await {
                    tracing::warn!(task_id = %id, error = %err, "nack failed; the reconciler re-sends the task");
                }
                None
            }
        }
    }

    async fn try_claim(&self, id: TaskId) -> Claimed {
        let store = &self.services.store;
        let read = retry(RetryPolicy::default(), "reading a queued task", || {
            store.get(id)
        })
        .await;
        let task = match read {
            Ok(Some(task)) => task,
            Ok(None) => {
                tracing::warn!(task_id = %id, "queued task does not exist; message dropped");
                return Claimed::Nothing;
            }
            Err(err) => {
                tracing::warn!(task_id = %id, error = %err, "cannot load a queued task");
                return Claimed::Later;
            }
        };
        let ttl = self.services.config.worker.lease_ttl();
        let holder = self.next_holder();
        let max_attempts = self.services.config.worker.max_attempts.max(1);
        let result = match task.status {
            TaskStatus::Queued => store.claim(id, &holder, ttl).await,
            TaskStatus::Processing | TaskStatus::DownloadingCode => {
                match self.run_started(&task).await {
                    Some(true) => {
                        store
                            .take_over(id, task.status, task.attempt, &holder, ttl)
                            .await
                    }
                    Some(false) if task.attempt < max_attempts => {
                        store.claim(id, &holder, ttl).await
                    }
                    Some(false) => {
                        tracing::debug!(task_id = %id, attempt = task.attempt, "attempts used up; left to the reconciler");
                        return Claimed::Nothing;
                    }
                    None => return Claimed::Later,
                }
            }
            TaskStatus::RunningAgent | TaskStatus::UploadingResults => {
                store
                    .take_over(id, task.status, task.attempt, &holder, ttl)
                    .await
            }
            _ => {
                tracing::debug!(task_id = %id, status = %task.status, "the task needs no worker now; message dropped");
                return Claimed::Nothing;
            }
        };
        match result {
            Ok((claimed, lease)) => {
                tracing::info!(task_id = %id, attempt = claimed.attempt, status = %claimed.status, holder = %lease.holder, "task claimed");
                if claimed.status != task.status {
                    announce(
                        &*self.services.cache,
                        claimed.events_id(),
                        claimed.status,
                        None,
                    )
                    .await;
                }
                Claimed::Held(Box::new(claimed), lease)
            }
            Err(err @ TransitionError::Store(_)) => {
                tracing::warn!(task_id = %id, error = %err, "cannot claim a task");
                Claimed::Later
            }
            Err(err) => {
                tracing::debug!(task_id = %id, error = %err, "someone else has the task; message dropped");
                Claimed::Nothing
            }
        }
    }
}

impl Worker {
    /// Whether the run a preparing task's row names exists (`None`: the runner cannot
    /// tell now).
    async fn run_started(&self, task: &Task) -> Option<bool> {
        let Some(name) = &task.runner_ref else {
            return Some(false);
        };
        match self.services.runner.status(&RunHandle(name.clone())).await {
            Ok(RunStatus::NotFound) => Some(false),
            Ok(_) => Some(true),
            Err(err) => {
                tracing::warn!(task_id = %task.id, run = %name, error = %err, "cannot tell whether a task's run started");
                None
            }
        }
    }
}

async fn ack(delivery: Delivery, id: TaskId) {
    if let Err(err) = delivery.ack().await {
        tracing::warn!(task_id = %id, error = %err, "ack failed; the message may come back (harmless)");
    }
}
