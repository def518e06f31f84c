//! Pull requests from the API: asked for with a task (`pull_request`, or a form's
//! `github_token`), shown on the task, and retried (`POST /api/v1/tasks/{id}/pull-request`).
//!
//! The token sent is sealed here, before the task is stored, and never echoed back; the
//! retry opens the pull request in the background and answers 202 at once, so the
//! client follows the task (`GET`) to see `pr_url` or `pr_error`.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use orchestrator::pr::{AskError, PrState, PullRequestAsk, open_for_task};
use orchestrator::{InputSource, Task, TaskStatus};

use super::intake::{media_type, read_limited};
use super::load_owned;
use crate::auth::Owner;
use crate::dto::{PullRequestRequest, TaskView};
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;
use crate::validate::{PullRequestDraft, check_pull_request};

/// The task as clients see it, with its pull request.
pub async fn view(state: &SharedState, task: Task) -> Result<TaskView, ApiError> {
    let store = &state.services.store;
    let record = store.pull_request(task.id).await?;
    // Opened between the two reads: the row read first lacks the URL stored with it.
    let task = match &record {
        Some(record) if record.state == PrState::Opened && task.pr_url.is_none() => {
            store.get(task.id).await?.unwrap_or(task)
        }
        _ => task,
    };
    Ok(TaskView::from(task).with_pull_request(record))
}

fn refused(err: AskError) -> ApiError {
    let field = match err {
        AskError::NoToken | AskError::TaskTokensRefused => "github_token",
        _ => "pull_request",
    };
    ApiError::InvalidField {
        field: field.to_string(),
        message: err.to_string(),
    }
}

fn not_set_up() -> ApiError {
    ApiError::InvalidField {
        field: "pull_request".to_string(),
        message: "this server does not open pull requests (its pull request settings are unusable)"
            .to_string(),
    }
}

/// The request to store with a new task, its token sealed; a 422 when the task cannot
/// have one (a zip upload, no token).
pub fn ask(
    state: &SharedState,
    owner: &str,
    input: &InputSource,
    draft: PullRequestDraft,
) -> Result<PullRequestAsk, ApiError> {
    if matches!(input, InputSource::Zip { .. }) {
        return Err(refused(AskError::NoRemote));
    }
    let opener = state.pull_requests.as_ref().ok_or_else(not_set_up)?;
    opener
        .prs
        .ask(owner, input, draft.base, draft.title, draft.token)
        .map_err(refused)
}

/// Open (again) a completed task's pull request: after a failure (see `pr_error`), or
/// for a task that did not ask for one. Optional JSON body: `base`, `title`,
/// `github_token` (a token stored before is kept when none is sent). Answers at once;
/// follow the task for `pr_url` or `pr_error`.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/pull-request",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    request_body(content = PullRequestRequest, content_type = "application/json", description = "Optional: no body keeps what the task asked before"),
    responses(
        (status = 202, description = "Asked for; being opened in the background", body = TaskView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The task is not COMPLETED, or its pull request is open or being opened", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "Invalid fields; a zip task (no repository to push to); no token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retry_pull_request(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    let json = media_type(request.headers()) == "application/json";
    let body = read_limited(request.into_body(), state.config.json_body_limit).await?;
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        PullRequestRequest::default()
    } else if !json {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as application/json, or no body".into(),
        ));
    } else {
        parse(&body)?
    };
    let draft = PullRequestDraft {
        base: request.base,
        title: request.title,
        token: request.github_token.map(secrecy::SecretString::from),
    };
    check_pull_request(&draft)?;
    if matches!(task.input, InputSource::Zip { .. }) {
        return Err(refused(AskError::NoRemote));
    }
    if task.status != TaskStatus::Completed {
        return Err(ApiError::Conflict(format!(
            "the task is {}; only a completed task's changes can become a pull request",
            task.status
        )));
    }
    let opener = state.pull_requests.clone().ok_or_else(not_set_up)?;
    let store = &state.services.store;
    let record = store.pull_request(task.id).await?;
    if let Some(record) = &record
        && matches!(record.state, PrState::Opened | PrState::Opening)
    {
        return Err(busy_or_open());
    }
    let stored_token = record.is_some_and(|record| record.ask.sealed_token.is_some());
    let (base, title) = (draft.base.clone(), draft.title.clone());
    let ask = match opener.prs.ask(
        &task.owner,
        &task.input,
        draft.base,
        draft.title,
        draft.token,
    ) {
        Ok(ask) => ask,
        // The token stored with the earlier ask is kept (`None` keeps it).
        Err(AskError::NoToken) if stored_token => PullRequestAsk {
            base,
            title,
            sealed_token: None,
        },
        Err(err) => return Err(refused(err)),
    };
    let stale = opener.prs.config.stale_after();
    if !store.ask_pull_request(task.id, ask, stale).await? {
        return Err(busy_or_open());
    }
    tracing::info!(task_id = %task.id, "pull request asked for again");
    let opening = task.clone();
    tokio::spawn(async move {
        open_for_task(&opener.services, &opener.prs, &opening).await;
    });
    let view = view(&state, task).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

fn busy_or_open() -> ApiError {
    ApiError::Conflict(
        "the task's pull request is open already (see pr_url) or being opened now".into(),
    )
}

fn parse(body: &[u8]) -> Result<PullRequestRequest, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let request: PullRequestRequest =
        serde_path_to_error::deserialize(&mut json).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if !inner.is_data() {
                ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
            } else {
                ApiError::InvalidField {
                    message: format!("invalid pull request: {path}: {inner}"),
                    field: path,
                }
            }
        })?;
    json.end()
        .map_err(|err| ApiError::BadRequest(format!("the body is not valid JSON: {err}")))?;
    Ok(request)
}
