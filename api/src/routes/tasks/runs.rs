//! A task's runs: `POST /api/v1/tasks/{id}/messages` continues a finished task with a
//! follow-up message (a new run of the same task, starting where the last one ended),
//! `GET /api/v1/tasks/{id}/runs` lists its runs in order, and each run's artifacts and
//! events have routes of their own. The task's own artifact and event routes always
//! show its current run.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use orchestrator::tasks::FollowUpError;
use orchestrator::worker::run_output_key;
use orchestrator::{Task, TaskId};

use super::intake::{check_live_tasks, media_type, read_limited};
use super::{ARTIFACTS, load_owned};
use crate::auth::Owner;
use crate::dto::{FollowUpRequest, RunList, RunView, TaskView};
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;

/// The longest follow-up message, as for a description.
const MAX_MESSAGE_CHARS: usize = 32 * 1024;

/// Continue a finished task with a follow-up message.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/messages",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    request_body(content = FollowUpRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued as the task's next run", body = TaskView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The task is not COMPLETED or FAILED (running, queued, cancelled), or its files were deleted", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Blank or too long a message, or an unknown field", body = ErrorBody),
        (status = 429, description = "Too many unfinished tasks, or over the submission rate", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_message(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    crate::rate_limit::check_submission(&state, &owner.0).await?;
    let media = media_type(request.headers());
    if media != "application/json" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{media}` is not accepted; send application/json"
        )));
    }
    let body = read_limited(request.into_body(), state.config.json_body_limit).await?;
    let message = parse_message(&body)?;
    check_live_tasks(&state, &owner.0).await?;
    let continued = state
        .services
        .ops()
        .follow_up(task.id, Some(&owner.0), &message)
        .await
        .map_err(|err| match err {
            FollowUpError::NotFound(id) => ApiError::task_not_found(id),
            FollowUpError::Store(err) => err.into(),
            other @ (FollowUpError::NotFinished { .. } | FollowUpError::Refused(_)) => {
                ApiError::Conflict(other.to_string())
            }
        })?;
    Ok((StatusCode::ACCEPTED, Json(continued.into())))
}

fn parse_message(body: &[u8]) -> Result<String, ApiError> {
    let request: FollowUpRequest = serde_json::from_slice(body).map_err(|err| {
        if err.is_data() {
            ApiError::Invalid(format!("invalid follow-up: {err}"))
        } else {
            ApiError::BadRequest(format!("the body is not valid JSON: {err}"))
        }
    })?;
    let field = |message: String| ApiError::InvalidField {
        field: "message".into(),
        message,
    };
    if request.message.trim().is_empty() {
        return Err(field(
            "message is blank; say what the agent should do next".into(),
        ));
    }
    if request.message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(field(format!(
            "message is longer than {MAX_MESSAGE_CHARS} characters; shorten it"
        )));
    }
    Ok(request.message)
}

/// The task's runs, oldest first, the current one last.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}/runs",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = RunList),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_runs(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<Json<RunList>, ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    Ok(Json(run_list(&state, task).await?))
}

/// Every run of `task`, the current one (the row itself) last.
pub async fn run_list(state: &SharedState, task: Task) -> Result<RunList, ApiError> {
    let past = state.services.store.past_runs(task.id).await?;
    // A best-of-N task's last attempt is recorded once it ended: the row is then the
    // task's outcome, not a run of its own.
    let current_recorded = past.iter().any(|run| run.run_number == task.run_number);
    let mut runs: Vec<RunView> = past.into_iter().map(RunView::from).collect();
    if !current_recorded {
        runs.push(RunView::current(&task));
    }
    Ok(RunList { runs })
}

/// One of a run's outputs: a redirect to a short-lived signed URL.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}/runs/{run}/artifacts/{name}",
    tag = "tasks",
    params(
        ("id" = String, Path, description = "Task id"),
        ("run" = u32, Path, minimum = 1, description = "Run number, from 1"),
        ("name" = String, Path, description = "diff.patch (cumulative), step.patch (that run's own changes; follow-ups only), trajectory.jsonl, result.json, agent.log, check.log (tasks with a check) or setup.log (tasks with a setup script)"),
    ),
    responses(
        (status = 302, description = "Location: a signed URL valid for a few minutes"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such task, run, artifact name, or not produced yet", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_run_artifact(
    State(state): State<SharedState>,
    owner: Owner,
    Path((id, run, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    let run = run_number(&task, &run)?;
    artifact_redirect(&state, task.id, run, &name).await
}

/// The run number in a path, if the task has that run.
pub fn run_number(task: &Task, text: &str) -> Result<u32, ApiError> {
    match text.parse::<u32>() {
        Ok(run) if (1..=task.run_number).contains(&run) => Ok(run),
        _ => Err(ApiError::NotFound(format!(
            "task {} has no run `{text}`; its runs are 1 to {}",
            task.id, task.run_number
        ))),
    }
}

/// A redirect to a signed URL of run `run`'s output `name`; 404 when there is none.
pub async fn artifact_redirect(
    state: &SharedState,
    id: TaskId,
    run: u32,
    name: &str,
) -> Result<Response, ApiError> {
    if !ARTIFACTS.contains(&name) {
        return Err(ApiError::NotFound(format!(
            "no artifact `{name}`; artifacts are {}",
            ARTIFACTS.join(", ")
        )));
    }
    let key = run_output_key(id, run, name);
    let blobs = &state.services.blobs;
    if !blobs.exists(&key).await? {
        return Err(ApiError::NotFound(format!(
            "run {run} of task {id} has no {name} (yet); it is uploaded when the agent finishes"
        )));
    }
    let url = blobs
        .signed_get_url(&key, state.config.artifact_url_ttl())
        .await?;
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}
