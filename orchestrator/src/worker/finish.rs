//! How a finished (or lost) run turns into a terminal status.
//!
//! The agent's exit code is the contract (0 completed, 1 other, 2 bad input, 3 limit
//! reached, 4 model failed); its `result.json` adds the why. The worker finishes a run it
//! watched to the end; the reconciler finishes one whose process is gone, knowing no exit
//! code, from `result.json` alone. Both go through [`finish_run`], so a race between them
//! ends the same way whoever wins the compare-and-set.

use serde_json::Value;

use super::lifecycle::{Stop, advance};
use crate::blob::BlobError;
use crate::services::Services;
use crate::task::{Task, TaskId, TaskStatus, TaskUpdate};

/// How the run ended, as far as the finisher knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Watched to its exit; `None` when a signal killed it.
    Exited(Option<i32>),
    /// Its process is gone and nobody saw it exit (the server restarted).
    Lost,
}

/// The terminal status a run earns, with the message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: TaskStatus,
    pub message: String,
}

impl Outcome {
    fn completed(message: impl Into<String>) -> Self {
        Self {
            status: TaskStatus::Completed,
            message: message.into(),
        }
    }

    fn failed(message: impl Into<String>) -> Self {
        Self {
            status: TaskStatus::Failed,
            message: message.into(),
        }
    }
}

/// Decides a run's terminal status from how it ended and its `result.json`, if any.
pub fn outcome(end: RunEnd, result: Option<&Value>) -> Outcome {
    let status = result.and_then(|r| r.get("status")).and_then(Value::as_str);
    let completed = status == Some("completed");
    match end {
        RunEnd::Exited(Some(0)) | RunEnd::Exited(None) | RunEnd::Lost if completed => {
            Outcome::completed(summary(result))
        }
        RunEnd::Exited(Some(0)) if result.is_none() => {
            Outcome::completed("the agent finished but uploaded no result.json")
        }
        _ if result.is_some() && !completed => Outcome::failed(failure_from_result(end, result)),
        RunEnd::Exited(Some(code)) => Outcome::failed(failure_from_code(code)),
        RunEnd::Exited(None) => Outcome::failed("the agent process was killed"),
        RunEnd::Lost => Outcome::failed("agent process lost (server restarted?)"),
    }
}

fn summary(result: Option<&Value>) -> String {
    let turns = result
        .and_then(|r| r.get("turns"))
        .and_then(Value::as_u64)
        .map(|turns| format!(" in {turns} turns"))
        .unwrap_or_default();
    format!("the agent finished{turns}")
}

fn failure_from_result(end: RunEnd, result: Option<&Value>) -> String {
    let field = |name: &str| {
        result
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let error = field("error");
    let base = match field("status").as_deref() {
        Some("limit_reached") => match field("limit") {
            Some(limit) => format!("the agent stopped: {limit} limit reached"),
            None => "the agent stopped: a limit was reached".to_string(),
        },
        Some("model_error") => "the model failed".to_string(),
        Some("error") => "the agent failed".to_string(),
        _ => match end {
            RunEnd::Exited(Some(code)) => failure_from_code(code),
            _ => "the agent failed".to_string(),
        },
    };
    match error {
        Some(error) => format!("{base}: {error}"),
        None => base,
    }
}

fn failure_from_code(code: i32) -> String {
    let meaning = match code {
        2 => "bad input",
        3 => "limit reached",
        4 => "the model failed",
        _ => "error",
    };
    format!("the agent exited with code {code} ({meaning})")
}

/// The blob key of one of a task's outputs.
pub fn output_key(id: TaskId, name: &str) -> String {
    format!("tasks/{id}/outputs/{name}")
}

/// The largest `result.json` read into the task row; the agent's own is a few hundred
/// bytes, so anything near this is not one.
pub const MAX_RESULT_BYTES: u64 = 1 << 20;

/// Reads the task's `result.json`; a missing, oversized or unreadable one is `None`
/// (logged).
pub async fn read_result(services: &Services, id: TaskId) -> Option<Value> {
    match services
        .blobs
        .get_bytes(&output_key(id, "result.json"), MAX_RESULT_BYTES)
        .await
    {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) if value.is_object() => Some(value),
            _ => {
                tracing::warn!(task_id = %id, "result.json is not a JSON object; ignored");
                None
            }
        },
        Err(BlobError::NotFound(_)) => None,
        Err(err) => {
            tracing::warn!(task_id = %id, error = %err, "cannot read result.json");
            None
        }
    }
}

/// Takes a task whose run is over from `RUNNING_AGENT` (or `UPLOADING_RESULTS`) to its
/// terminal status, storing `result.json` in the row.
pub async fn finish_run(services: &Services, task: Task, end: RunEnd) -> Result<Task, Stop> {
    let task = if task.status == TaskStatus::RunningAgent {
        advance(
            services,
            &task,
            TaskStatus::UploadingResults,
            TaskUpdate::default(),
        )
        .await?
    } else {
        task
    };
    let result = read_result(services, task.id).await;
    let Outcome { status, message } = outcome(end, result.as_ref());
    tracing::info!(task_id = %task.id, %status, %message, "run finished");
    advance(
        services,
        &task,
        status,
        TaskUpdate {
            message: Some(message),
            result,
            ..TaskUpdate::default()
        },
    )
    .await
}

#[cfg(test)]
#[path = "finish_tests.rs"]
mod tests;
