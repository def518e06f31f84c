//! One status move, told to everyone who follows the task.
//!
//! The row moves by compare-and-set; only when that succeeded does the cache hear about
//! it (latest status, a `{"type":"status"}` event on the task's stream, and the end of the
//! stream once the status is terminal). A failed compare-and-set means someone else
//! (the API cancelling, the reconciler, another worker) moved the task first: the caller
//! stops touching it.

use crate::services::Services;
use crate::store::{StoreError, TransitionError};
use crate::task::{Task, TaskId, TaskStatus, TaskUpdate};

/// Why a task is no longer ours to move.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// Someone else moved it (or it vanished); leave it alone.
    #[error("task {id} was moved by someone else ({reason})")]
    Moved { id: TaskId, reason: String },
    /// The store failed; the task stays where it was.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Moves `task` from its current status to `to` and tells the cache.
pub async fn advance(
    services: &Services,
    task: &Task,
    to: TaskStatus,
    update: TaskUpdate,
) -> Result<Task, Stop> {
    let message = update.message.clone();
    let moved = services
        .store
        .transition(task.id, task.status, to, update)
        .await
        .map_err(|err| match err {
            TransitionError::Store(err) => Stop::Store(err),
            other => Stop::Moved {
                id: task.id,
                reason: other.to_string(),
            },
        })?;
    announce(services, moved.id, to, message.as_deref()).await;
    Ok(moved)
}

/// Publishes a status change to the cache; a cache failure is logged, never fatal (the
/// store is the truth, the cache only speeds up reads).
pub async fn announce(services: &Services, id: TaskId, status: TaskStatus, message: Option<&str>) {
    if let Err(err) = services.cache.set_status(id, status).await {
        tracing::warn!(task_id = %id, error = %err, "status cache update failed");
    }
    let mut event = serde_json::json!({"type": "status", "status": status});
    if let Some(message) = message {
        event["message"] = serde_json::Value::from(message);
    }
    publish(services, id, event).await;
    if status.is_terminal() {
        close_stream(services, id).await;
    }
}

/// Appends one event to the task's stream.
pub async fn publish(services: &Services, id: TaskId, event: serde_json::Value) {
    if let Err(err) = services.cache.publish(id, event).await {
        tracing::warn!(task_id = %id, error = %err, "publishing a task event failed");
    }
}

pub async fn close_stream(services: &Services, id: TaskId) {
    if let Err(err) = services.cache.close(id).await {
        tracing::warn!(task_id = %id, error = %err, "closing a task's event stream failed");
    }
}
