//! The operations on a task that every front end shares: submit, cancel, and telling the
//! task's followers about a status.
//!
//! The REST API (both its routes), the CLI and the tests call these instead of writing
//! rows and cache entries themselves, so there is one way a task is created and one way
//! it is cancelled.
//!
//! - [`TaskOps::submit`] stores the task `QUEUED` with its outbox entry in one
//!   transaction, then tries to put its message on the queue at once and removes the
//!   entry. Once the row is stored the task exists and will run: a queue that is down
//!   costs only delay (the reconciler relays the outbox), never an error to the caller,
//!   who would otherwise retry and make a duplicate. A process whose queue reaches no
//!   worker (an API-only process on the embedded in-process queue) has no queue here
//!   and leaves the entry for the worker processes, which read the outbox
//!   ([`crate::worker::OutboxFeed`]).
//! - [`TaskOps::cancel`] moves any live status to `CANCELLED` (compare-and-set, not
//!   fenced: a cancel wins over the worker's lease, whose next fenced write fails), then
//!   stops the run where this process can reach the runner; the worker holding the
//!   lease notices the cancel on its own as well.
//! - Status announcements go to the cache only after the store changed; a cache failure
//!   is logged and never fails the operation (the store is the truth).

use std::sync::Arc;

use crate::cache::StatusCache;
use crate::queue::{Queue, TaskMessage, TaskResult};
use crate::runner::{RunHandle, Runner};
use crate::services::Services;
use crate::store::{Created, StoreError, TaskStore, TransitionError};
use crate::task::{NewTask, Task, TaskId, TaskStatus, TaskUpdate};

/// A cancel re-reads and retries this often when the task moves in between.
const CANCEL_ATTEMPTS: usize = 5;

/// Why a cancel did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such task, or not the given owner's (the same answer, so ids cannot be probed).
    #[error("task {0} not found")]
    NotFound(TaskId),
    #[error("task {} already finished as {}; there is nothing to cancel", .0.id, .0.status)]
    AlreadyFinished(Box<Task>),
    #[error("task {0} kept changing status; retry the cancel")]
    KeptChanging(TaskId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a follow-up did not start.
#[derive(Debug, thiserror::Error)]
pub enum FollowUpError {
    /// No such task, or not the given owner's.
    #[error("task {0} not found")]
    NotFound(TaskId),
    #[error("task {id} is {status}; only a COMPLETED or FAILED task takes a follow-up message")]
    NotFinished { id: TaskId, status: TaskStatus },
    /// The task cannot be continued (its files were deleted).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(StoreError),
}

/// The parts the task operations need.
#[derive(Clone)]
pub struct TaskOps {
    pub store: Arc<dyn TaskStore>,
    /// Where new tasks' messages go at once; `None` leaves them in the store's outbox
    /// for the worker processes to read.
    pub queue: Option<Arc<dyn Queue>>,
    pub cache: Arc<dyn StatusCache>,
    /// Stops a cancelled task's run from here; `None` where this process cannot reach
    /// runs (the worker holding the task stops it).
    pub runner: Option<Arc<dyn Runner>>,
}

impl std::fmt::Debug for TaskOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskOps")
            .field("queue", &self.queue.is_some())
            .field("runner", &self.runner.is_some())
            .finish_non_exhaustive()
    }
}

impl TaskOps {
    /// Every part from `services`, the runner included.
    pub fn new(services: &Services) -> Self {
        Self {
            store: services.store.clone(),
            queue: Some(services.queue.clone()),
            cache: services.cache.clone(),
            runner: Some(services.runner.clone()),
        }
    }

    /// Stores and queues a new task, or finds the one its idempotency key names (which
    /// is returned as it is, and not queued again).
    pub async fn submit(&self, new: NewTask) -> Result<(Task, Created), StoreError> {
        let (task, created) = self.store.create(new).await?;
        if created == Created::Existing {
            return Ok((task, created));
        }
        announce(&*self.cache, task.events_id(), task.status, None).await;
        if let Some(queue) = &self.queue {
            relay(&*self.store, &**queue, task.id).await;
        }
        tracing::info!(task_id = %task.id, owner = %task.owner, "task created");
        Ok((task, created))
    }

    /// Cancels `id` (only if `owner` owns it, when given).
    pub async fn cancel(&self, id: TaskId, owner: Option<&str>) -> Result<Task, CancelError> {
        let mut task = self.load(id, owner).await?;
        for _ in 0..CANCEL_ATTEMPTS {
            if task.status.is_terminal() {
                return Err(CancelError::AlreadyFinished(Box::new(task)));
            }
            let update = TaskUpdate {
                message: Some("cancelled by the client".into()),
                ..TaskUpdate::default()
            };
            match self
                .store
                .transition(id, task.status, TaskStatus::Cancelled, update)
                .await
            {
                Ok(cancelled) => {
                    // Followers learn at once; stopping the run may take its kill grace.
                    announce(
                        &*self.cache,
                        cancelled.events_id(),
                        cancelled.status,
                        cancelled.message.as_deref(),
                    )
                    .await;
                    self.stop_run(&cancelled).await;
                    if let Some(queue) = &self.queue {
                        publish_result(&**queue, &cancelled).await;
                    }
                    crate::metrics::task_finished(TaskStatus::Cancelled, "cancelled");
                    tracing::info!(task_id = %id, "task cancelled");
                    return Ok(cancelled);
                }
                Err(TransitionError::Conflict { .. }) => task = self.load(id, owner).await?,
                Err(TransitionError::NotFound(_)) => return Err(CancelError::NotFound(id)),
                Err(TransitionError::Store(err)) => return Err(err.into()),
                Err(
                    err @ (TransitionError::Illegal { .. } | TransitionError::LeaseLost { .. }),
                ) => {
                    tracing::warn!(task_id = %id, error = %err, "cancel refused by the store");
                    task = self.load(id, owner).await?;
                }
            }
        }
        Err(CancelError::KeptChanging(id))
    }

    /// Continues a finished task of `owner` (when given) with a follow-up message: the
    /// store archives the current run and queues the next in one transaction
    /// ([`TaskStore::follow_up`]), then the message goes on the queue as a new task's
    /// does.
    pub async fn follow_up(
        &self,
        id: TaskId,
        owner: Option<&str>,
        message: &str,
    ) -> Result<Task, FollowUpError> {
        let task = match self.load(id, owner).await {
            Ok(task) => task,
            Err(CancelError::Store(err)) => return Err(FollowUpError::Store(err)),
            Err(_) => return Err(FollowUpError::NotFound(id)),
        };
        let continued = match self.store.follow_up(id, message).await {
            Ok(continued) => continued,
            Err(TransitionError::NotFound(_)) => return Err(FollowUpError::NotFound(id)),
            Err(TransitionError::Conflict { actual, .. }) => {
                return Err(FollowUpError::NotFinished { id, status: actual });
            }
            Err(TransitionError::Store(StoreError::Refused(why))) => {
                return Err(FollowUpError::Refused(why));
            }
            Err(TransitionError::Store(err)) => return Err(FollowUpError::Store(err)),
            Err(err @ (TransitionError::Illegal { .. } | TransitionError::LeaseLost { .. })) => {
                tracing::warn!(task_id = %id, error = %err, "follow-up refused by the store");
                return Err(FollowUpError::NotFinished {
                    id,
                    status: task.status,
                });
            }
        };
        announce(&*self.cache, continued.events_id(), continued.status, None).await;
        if let Some(queue) = &self.queue {
            relay(&*self.store, &**queue, id).await;
        }
        tracing::info!(task_id = %id, run = continued.run_number, "follow-up queued");
        Ok(continued)
    }

    async fn load(&self, id: TaskId, owner: Option<&str>) -> Result<Task, CancelError> {
        match self.store.get(id).await? {
            Some(task) if owner.is_none_or(|owner| task.owner == owner) => Ok(task),
            _ => Err(CancelError::NotFound(id)),
        }
    }

    async fn stop_run(&self, task: &Task) {
        let (Some(runner), Some(name)) = (&self.runner, &task.runner_ref) else {
            return;
        };
        if let Err(err) = runner.cancel(&RunHandle(name.clone())).await {
            tracing::warn!(task_id = %task.id, error = %err, "stopping the cancelled run failed; its worker will");
        }
    }
}

/// Puts a stored task's message on the queue and removes its outbox entry. A failure
/// is logged: the entry stays, and the reconciler relays it later.
pub async fn relay(store: &dyn TaskStore, queue: &dyn Queue, id: TaskId) -> bool {
    if let Err(err) = queue.enqueue(TaskMessage { task_id: id }).await {
        tracing::warn!(task_id = %id, error = %err, "enqueue failed; the reconciler sends it later");
        return false;
    }
    if let Err(err) = store.outbox_done(id).await {
        // The message went out; a second one later is harmless.
        tracing::warn!(task_id = %id, error = %err, "cannot remove the outbox entry of a queued task");
    }
    true
}

/// Tells the results' subscribers that `task` finished. Best effort: a failure is
/// logged (the store is the truth; subscribers that missed it can read the task).
pub async fn publish_result(queue: &dyn Queue, task: &Task) {
    if !task.status.is_terminal() {
        return;
    }
    let result = TaskResult {
        task_id: task.id,
        status: task.status,
        message: task.message.clone(),
    };
    if let Err(err) = queue.publish_result(&result).await {
        tracing::warn!(task_id = %task.id, error = %err, "publishing the task's result failed");
    }
}

/// Tells the cache about a status the store now holds: the latest status, a
/// `{"type":"status"}` event, and the end of the stream once the status is terminal.
pub async fn announce(
    cache: &dyn StatusCache,
    id: TaskId,
    status: TaskStatus,
    message: Option<&str>,
) {
    if let Err(err) = cache.set_status(id, status).await {
        crate::metrics::cache_error();
        tracing::warn!(task_id = %id, error = %err, "status cache update failed");
    }
    let mut event = serde_json::json!({"type": "status", "status": status});
    if let Some(message) = message {
        event["message"] = serde_json::Value::from(message);
    }
    publish(cache, id, event).await;
    if status.is_terminal() {
        close_stream(cache, id).await;
    }
}

/// Appends one event to the task's stream.
pub async fn publish(cache: &dyn StatusCache, id: TaskId, event: serde_json::Value) {
    if let Err(err) = cache.publish(id, event).await {
        crate::metrics::cache_error();
        tracing::warn!(task_id = %id, error = %err, "publishing a task event failed");
    }
}

/// Ends the task's stream (its followers stop waiting).
pub async fn close_stream(cache: &dyn StatusCache, id: TaskId) {
    if let Err(err) = cache.close(id).await {
        crate::metrics::cache_error();
        tracing::warn!(task_id = %id, error = %err, "closing a task's event stream failed");
    }
}
