//! `/api/v1/tasks`: create, read, list (and follow the list), cancel, follow, and fetch
//! artifacts.
//!
//! Every route is owner-scoped: another owner's task answers 404, exactly like a task
//! that does not exist, so ids cannot be probed.

pub mod best_of;
pub mod events;
pub mod intake;
pub mod pull_request;
pub mod runs;
pub mod staging;
pub mod updates;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use orchestrator::{Task, TaskFilter, TaskId, TaskStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Owner;
use crate::config::ApiConfig;
use crate::dto::{CreateTaskMultipart, CreateTaskRequest, TaskList, TaskView};
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;
use intake::{Submitted, idempotency_key, media_type, read_limited, submit};

/// The outputs a client may fetch, as `agent-rs job` names them (`step.patch` only
/// exists for follow-up runs, `check.log` for tasks with a check, `setup.log` for tasks
/// with a setup script).
pub const ARTIFACTS: [&str; 7] = [
    "diff.patch",
    "step.patch",
    "trajectory.jsonl",
    "result.json",
    "agent.log",
    "check.log",
    "setup.log",
];

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

const CREATE_FIELDS: [&str; 16] = [
    "zip_file",
    "git_url",
    "git_ref",
    "description",
    "target_file",
    "model",
    "max_turns",
    "max_tokens",
    "timeout_secs",
    "setup",
    "pull_request",
    "pull_request_base",
    "pull_request_title",
    "github_token",
    "attempts",
    "check",
];

pub fn router(config: &ApiConfig) -> Router<SharedState> {
    Router::new()
        .route(
            "/api/v1/tasks",
            post(create_task)
                .layer(DefaultBodyLimit::max(config.multipart_body_limit))
                .get(list_tasks),
        )
        .route("/api/v1/tasks/updates", get(updates::task_updates))
        .route("/api/v1/tasks/{id}", get(get_task))
        .route("/api/v1/tasks/{id}/cancel", post(cancel_task))
        .route(
            "/api/v1/tasks/{id}/pull-request",
            post(pull_request::retry_pull_request),
        )
        .route("/api/v1/tasks/{id}/events", get(events::task_events))
        .route("/api/v1/tasks/{id}/artifacts/{name}", get(get_artifact))
        .route(
            "/api/v1/tasks/{id}/messages",
            post(runs::post_message).layer(DefaultBodyLimit::max(config.json_body_limit)),
        )
        .route("/api/v1/tasks/{id}/runs", get(runs::list_runs))
        .route("/api/v1/tasks/{id}/attempts", get(best_of::list_attempts))
        .route(
            "/api/v1/tasks/{id}/runs/{run}/artifacts/{name}",
            get(runs::get_run_artifact),
        )
        .route(
            "/api/v1/tasks/{id}/runs/{run}/events",
            get(events::run_events),
        )
}

/// The task `id` if it exists and belongs to `owner`; 404 otherwise.
pub async fn load_owned(state: &SharedState, owner: &Owner, id: &str) -> Result<Task, ApiError> {
    let task_id: TaskId = id.parse().map_err(|_| ApiError::task_not_found(id))?;
    match state.services.store.get(task_id).await? {
        Some(task) if task.owner == owner.0 => Ok(task),
        _ => Err(ApiError::task_not_found(id)),
    }
}

/// Submit a task: JSON with a git URL, or multipart with a `zip_file` part (or `git_url`).
#[utoipa::path(
    post,
    path = "/api/v1/tasks",
    tag = "tasks",
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
        pattern = r"^[!-~]+$",
        description = "Repeat a create safely: the same owner and key return the first task (200). 1 to 255 visible ASCII characters.")),
    request_body(content(
        (CreateTaskRequest = "application/json"),
        (CreateTaskMultipart = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Created and queued", body = TaskView),
        (status = 200, description = "The task this Idempotency-Key already created", body = TaskView),
        (status = 400, description = "Malformed body or header", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Neither JSON nor multipart", body = ErrorBody),
        (status = 422, description = "Invalid fields: unknown field, bad URL, blank description, bad zip", body = ErrorBody),
        (status = 429, description = "Over the owner's submission rate or unfinished-task cap; see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_task(
    State(state): State<SharedState>,
    owner: Owner,
    request: Request,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    crate::rate_limit::check_submission(&state, &owner.0).await?;
    let key = idempotency_key(request.headers())?;
    let submitted = match media_type(request.headers()).as_str() {
        "application/json" => {
            let body = read_limited(request.into_body(), state.config.json_body_limit).await?;
            submit(&state, owner.0, intake::parse_json(&body)?, key).await?
        }
        "multipart/form-data" => {
            let fields = intake::read_multipart(&state, request, &CREATE_FIELDS, true).await?;
            intake::create_from_form(&state, owner.0, fields, "description", key).await?
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type `{other}` is not accepted; send application/json or multipart/form-data"
            )));
        }
    };
    Ok(match submitted {
        Submitted::New(task) => (
            StatusCode::CREATED,
            Json(pull_request::view(&state, task).await?),
        ),
        Submitted::Existing(task) => (
            StatusCode::OK,
            Json(pull_request::view(&state, task).await?),
        ),
    })
}

/// One task.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = TaskView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such task for this owner", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_task(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    Ok(Json(pull_request::view(&state, task).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only tasks in this status (upper or lower case); empty means any.
    #[param(
        pattern = r"^(?:|[Pp][Ee][Nn][Dd][Ii][Nn][Gg]|[Qq][Uu][Ee][Uu][Ee][Dd]|[Pp][Rr][Oo][Cc][Ee][Ss][Ss][Ii][Nn][Gg]|[Dd][Oo][Ww][Nn][Ll][Oo][Aa][Dd][Ii][Nn][Gg]_[Cc][Oo][Dd][Ee]|[Rr][Uu][Nn][Nn][Ii][Nn][Gg]_[Aa][Gg][Ee][Nn][Tt]|[Uu][Pp][Ll][Oo][Aa][Dd][Ii][Nn][Gg]_[Rr][Ee][Ss][Uu][Ll][Tt][Ss]|[Cc][Oo][Mm][Pp][Ll][Ee][Tt][Ee][Dd]|[Ff][Aa][Ii][Ll][Ee][Dd]|[Cc][Aa][Nn][Cc][Ee][Ll][Ll][Ee][Dd])$"
    )]
    pub status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// The caller's tasks, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    tag = "tasks",
    params(ListParams),
    responses(
        (status = 200, body = TaskList),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Unknown status or bad limit", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_tasks(
    State(state): State<SharedState>,
    owner: Owner,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<TaskList>, ApiError> {
    let Query(params) = query.map_err(|err| ApiError::Invalid(err.body_text()))?;
    let status = params
        .status
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<TaskStatus>())
        .transpose()
        .map_err(|err| ApiError::Invalid(format!("{err}; use e.g. QUEUED or COMPLETED")))?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let page = state
        .services
        .store
        .list(TaskFilter {
            owner: Some(owner.0),
            status,
            limit,
            cursor: params.cursor.filter(|c| !c.is_empty()),
        })
        .await?;
    Ok(Json(TaskList {
        tasks: page.tasks.into_iter().map(TaskView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Cancel a task that has not finished; its run, if any, is stopped.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/cancel",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Cancelled", body = TaskView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_task(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let task_id: TaskId = id.parse().map_err(|_| ApiError::task_not_found(&id))?;
    let cancelled = state.services.ops().cancel(task_id, Some(&owner.0)).await?;
    Ok(Json(cancelled.into()))
}

/// One of the task's outputs: a redirect to a short-lived signed URL.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}/artifacts/{name}",
    tag = "tasks",
    params(
        ("id" = String, Path, description = "Task id"),
        ("name" = String, Path, description = "Of the current run (of a best-of-N task: of the chosen attempt once there is one): diff.patch (cumulative over the task's runs), step.patch (this run's own changes; follow-ups only), trajectory.jsonl, result.json, agent.log, check.log (tasks with a check) or setup.log (tasks with a setup script)"),
    ),
    responses(
        (status = 302, description = "Location: a signed URL valid for a few minutes"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such task, artifact name, or not produced yet", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_artifact(
    State(state): State<SharedState>,
    owner: Owner,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    runs::artifact_redirect(&state, task.id, task.result_run(), &name).await
}
