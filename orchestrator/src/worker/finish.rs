//! How a finished (or lost) run turns into a terminal status.
//!
//! The agent's exit code is the contract (0 completed, 1 other, 2 bad input, 3 limit
//! reached, 4 model failed, 5 the object store stayed unreachable for its download: an
//! infrastructure failure, counted apart from the agent's own); its `result.json` adds
//! the why. Whoever holds the task's
//! lease finishes it: the worker that watched the run to its end, or the reconciler
//! after taking over a run nobody watches (which knows the exit only if the runner
//! recorded it). Both go through [`finish_run`], whose writes are fenced on the lease,
//! so a run is finished once, and the same way whoever finishes it.
//!
//! `result.json` is read with a size cap into the row. A result that is not there is
//! "no result"; a blob store that fails is not: transient failures are retried, and if
//! they persist the task is left (lease released) for a later try instead of being
//! finished on a guess.
//!
//! Once finished, the pull request the task asked for (if any) is opened ([`crate::pr`]).

use serde_json::Value;

use super::Stop;
use super::lease::Held;
use crate::blob::BlobError;
use crate::metrics;
use crate::runner::RunHandle;
use crate::services::Services;
use crate::store::EndedRun;
use crate::store::retry::{RetryPolicy, Transient, retry};
use crate::task::{Task, TaskId, TaskStatus, TaskUpdate};

/// The largest `result.json` read into the task row; the agent's own is a few hundred
/// bytes, so anything near this is not one. A larger one is ignored (and said so).
pub const MAX_RESULT_BYTES: u64 = 1 << 20;

/// How the run ended, as far as the finisher knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The runner saw it end: the agent's exit code (`None` when it was killed or the
    /// runner cannot tell) and how it ended.
    Exited { code: Option<i32>, reason: String },
    /// Nobody saw it end and the runner has no record of it (a host crash).
    Lost(String),
    /// It ran past its deadline and was stopped.
    DeadlineExceeded,
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
pub fn outcome(end: &RunEnd, result: Option<&Value>) -> Outcome {
    let status = result.and_then(|r| r.get("status")).and_then(Value::as_str);
    let completed = status == Some("completed");
    let code = match end {
        RunEnd::Exited { code, .. } => *code,
        _ => None,
    };
    match end {
        RunEnd::DeadlineExceeded => {
            Outcome::failed("deadline exceeded: the task ran past its time limit")
        }
        RunEnd::Exited {
            code: Some(0) | None,
            ..
        }
        | RunEnd::Lost(_)
            if completed =>
        {
            Outcome::completed(summary(result))
        }
        RunEnd::Exited { code: Some(0), .. } if result.is_none() => {
            Outcome::completed("the agent finished but uploaded no result.json")
        }
        _ if result.is_some() && !completed => Outcome::failed(failure_from_result(code, result)),
        RunEnd::Exited {
            code: Some(code), ..
        } => Outcome::failed(failure_from_code(*code)),
        RunEnd::Exited { code: None, reason } => {
            Outcome::failed(format!("the agent process was killed ({reason})"))
        }
        RunEnd::Lost(reason) => Outcome::failed(format!("agent process lost: {reason}")),
    }
}

/// The fixed word a finished run is counted under: how it ended, in the agent's terms
/// when its `result.json` says.
fn reason(end: &RunEnd, result: Option<&Value>) -> &'static str {
    let status = result.and_then(|r| r.get("status")).and_then(Value::as_str);
    match (end, status) {
        (RunEnd::DeadlineExceeded, _) => "deadline",
        (_, Some("completed")) => "completed",
        (_, Some("limit_reached")) => "limit_reached",
        (_, Some("model_error")) => "model_error",
        (_, Some(_)) => "agent_error",
        (RunEnd::Lost(_), None) => "lost",
        (RunEnd::Exited { code: Some(0), .. }, None) => "completed",
        (RunEnd::Exited { code: Some(5), .. }, None) => "infrastructure",
        (RunEnd::Exited { code: Some(_), .. }, None) => "agent_error",
        (RunEnd::Exited { code: None, .. }, None) => "killed",
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

fn failure_from_result(code: Option<i32>, result: Option<&Value>) -> String {
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
        _ => match code {
            Some(code) => failure_from_code(code),
            None => "the agent failed".to_string(),
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
        5 => "infrastructure failure: the object store stayed unreachable for the download",
        _ => "error",
    };
    format!("the agent exited with code {code} ({meaning})")
}

/// The blob key of one of a task's first run's outputs.
pub fn output_key(id: TaskId, name: &str) -> String {
    format!("tasks/{id}/outputs/{name}")
}

/// The blob key of one of run `run_number`'s outputs: the first run's where they always
/// were, each later run's in a folder of its own under them (still under `outputs/`,
/// which blob stores may keep apart).
pub fn run_output_key(id: TaskId, run_number: u32, name: &str) -> String {
    if run_number <= 1 {
        output_key(id, name)
    } else {
        format!("tasks/{id}/outputs/run-{run_number}/{name}")
    }
}

/// What reading `result.json` gave.
#[derive(Debug)]
pub enum ResultRead {
    Found(Value),
    /// There is none, or it is unusable (the reason goes into the task's message).
    Missing(Option<String>),
}

impl Transient for BlobError {
    fn is_transient(&self) -> bool {
        BlobError::is_transient(self)
    }
}

/// Reads the `result.json` of run `run_number` of the task, at most [`MAX_RESULT_BYTES`]
/// of it. Transient blob failures are retried; an error that outlasts the retries is
/// returned.
pub async fn read_result(
    services: &Services,
    id: TaskId,
    run_number: u32,
) -> Result<ResultRead, BlobError> {
    let key = run_output_key(id, run_number, "result.json");
    let blobs = &services.blobs;
    let read = retry(RetryPolicy::default(), "reading result.json", || {
        blobs.get_bytes(&key, MAX_RESULT_BYTES)
    })
    .await;
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(BlobError::NotFound(_)) => return Ok(ResultRead::Missing(None)),
        Err(BlobError::TooLarge { .. }) => {
            tracing::warn!(task_id = %id, "result.json is too large; ignored");
            return Ok(ResultRead::Missing(Some(format!(
                "result.json is over the {MAX_RESULT_BYTES}-byte limit; ignored"
            ))));
        }
        Err(err) => return Err(err),
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) if value.is_object() => Ok(ResultRead::Found(value)),
        _ => {
            tracing::warn!(task_id = %id, "result.json is not a JSON object; ignored");
            Ok(ResultRead::Missing(Some(
                "result.json is not a JSON object; ignored".to_string(),
            )))
        }
    }
}

/// Takes a task whose run is over from `RUNNING_AGENT` (or `UPLOADING_RESULTS`) to its
/// terminal status, storing `result.json` in the row, then removes what the runner kept
/// of the run. If `result.json` cannot be read for now, `Stop::Later` is returned (the
/// caller releases the task for a later try).
pub async fn finish_run(
    services: &Services,
    held: &mut Held,
    task: Task,
    end: RunEnd,
) -> Result<Task, Stop> {
    let task = if task.status == TaskStatus::RunningAgent {
        held.advance(&task, TaskStatus::UploadingResults, TaskUpdate::default())
            .await?
    } else {
        task
    };
    let (result, note) = match read_result(services, task.id, task.run_number).await {
        Ok(ResultRead::Found(value)) => (Some(value), None),
        Ok(ResultRead::Missing(note)) => (None, note),
        Err(err) if err.is_transient() => {
            metrics::blob_error("read_result");
            tracing::warn!(task_id = %task.id, error = %err, "cannot read result.json for now; finishing later");
            return Err(Stop::Later {
                id: task.id,
                reason: format!("result.json unreadable for now: {err}"),
            });
        }
        Err(err) => {
            metrics::blob_error("read_result");
            (None, Some(format!("cannot read result.json: {err}")))
        }
    };
    let reason = reason(&end, result.as_ref());
    let Outcome { status, message } = outcome(&end, result.as_ref());
    let message = match note {
        Some(note) => format!("{message}; {note}"),
        None => message,
    };
    tracing::info!(task_id = %task.id, %status, %message, "run finished");
    if matches!(end, RunEnd::Lost(_)) {
        metrics::global().inc("orchestrator_runs_lost_total", &[]);
    }
    if task.is_best_of() {
        let name = task.runner_ref.clone();
        let ended = EndedRun {
            status,
            message: Some(message),
            result,
        };
        let after = super::best_of::end_attempt(services, held, task, ended, reason).await?;
        remove_run(services, after.id, name).await;
        if after.status.is_terminal() {
            crate::pr::after_run(services, &after).await;
        }
        return Ok(after);
    }
    let update = TaskUpdate {
        message: Some(message),
        result,
        ..TaskUpdate::default()
    };
    let finished = held.advance(&task, status, update).await?;
    metrics::task_finished(status, reason);
    remove_run(services, finished.id, finished.runner_ref.clone()).await;
    // The task is finished whatever happens here: a pull request that cannot be opened
    // leaves it COMPLETED, with the reason on its pull request record.
    crate::pr::after_run(services, &finished).await;
    Ok(finished)
}

/// Removes what the runner kept of a finished run.
async fn remove_run(services: &Services, id: TaskId, name: Option<String>) {
    if let Some(name) = name
        && let Err(err) = services.runner.cancel(&RunHandle(name)).await
    {
        tracing::warn!(task_id = %id, error = %err, "cannot remove a finished run");
    }
}

#[cfg(test)]
#[path = "finish_tests.rs"]
mod tests;
