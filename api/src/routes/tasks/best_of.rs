//! `GET /api/v1/tasks/{id}/attempts`: a best-of-N task's attempts side by side.
//!
//! Each attempt is a run of the task (its artifacts and events are under
//! `.../runs/{n}/`); this view adds what ranks them (the check's verdict, tokens, files
//! changed), which one is kept, and pass@k over the ended ones, computed with the same
//! code the worker ranks with and the eval harness reports with (the `attempts` crate).

use axum::Json;
use axum::extract::{Path, State};
use orchestrator::task::RunRecord;
use orchestrator::worker::candidate;
use orchestrator::{Task, TaskStatus};
use serde_json::Value;

use super::load_owned;
use crate::auth::Owner;
use crate::dto::{AttemptList, AttemptView};
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;

/// A best-of-N task's attempts, in order, with the kept one marked.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}/attempts",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = AttemptList),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such task, or a task that asked for neither `attempts` nor `check`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_attempts(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<Json<AttemptList>, ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    if !task.is_best_of() {
        return Err(ApiError::NotFound(format!(
            "task {} makes a single attempt (it asked for neither `attempts` nor `check`); \
             its runs are at /api/v1/tasks/{}/runs",
            task.id, task.id
        )));
    }
    let runs = state.services.store.past_runs(task.id).await?;
    Ok(Json(attempt_list(&task, &runs)))
}

/// The attempts of `task`, from its ended runs (`runs`) and the row.
pub fn attempt_list(task: &Task, runs: &[RunRecord]) -> AttemptList {
    let ended = orchestrator::worker::candidates(task, runs);
    let attempts = (1..=task.best_of.attempts)
        .map(|n| match runs.iter().find(|run| run.run_number == n) {
            Some(run) => ended_view(task, run),
            None => waiting_view(task, n),
        })
        .collect();
    AttemptList {
        attempts_asked: task.best_of.attempts,
        check: task.best_of.check.clone(),
        attempts,
        chosen: task.chosen_run,
        passed: attempts::passed_count(&ended),
        pass_at_k: attempts::pass_at_k_table(&ended)
            .into_iter()
            .map(|(k, p)| (k.to_string(), p))
            .collect(),
    }
}

fn ended_view(task: &Task, run: &RunRecord) -> AttemptView {
    let result = run.result.as_ref();
    let passed = candidate(task, run.run_number, run.status, result).passed();
    AttemptView {
        attempt: run.run_number,
        status: run.status.as_str().to_string(),
        message: run.message.clone(),
        passed: Some(passed),
        check: result.and_then(|r| r.get("check")).cloned(),
        files_changed: result
            .and_then(|r| r.get("files_changed"))
            .and_then(Value::as_u64),
        total_tokens: result
            .and_then(|r| r.pointer("/usage/total_tokens"))
            .and_then(Value::as_u64),
        chosen: task.chosen_run == Some(run.run_number),
        result: run.result.clone(),
    }
}

/// An attempt with no record yet: running now, waiting its turn, or never run (the task
/// ended first: cancelled, or its workspace could not be prepared).
fn waiting_view(task: &Task, n: u32) -> AttemptView {
    let status = if n == task.run_number {
        task.status.as_str()
    } else if n > task.run_number && !task.status.is_terminal() {
        TaskStatus::Pending.as_str()
    } else {
        "NOT_RUN"
    };
    AttemptView {
        attempt: n,
        status: status.to_string(),
        message: (n == task.run_number)
            .then(|| task.message.clone())
            .flatten(),
        passed: None,
        check: None,
        files_changed: None,
        total_tokens: None,
        chosen: false,
        result: None,
    }
}
