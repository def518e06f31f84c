//! The original API, `POST /api/task` and `GET /api/task/{id}/status`, kept so existing
//! clients keep working.
//!
//! Same auth, checks and storage as `/api/v1/tasks`; only the field names
//! (`task_description`) and the answers' shapes differ. Unknown form fields are skipped
//! here rather than refused: these clients were written against a looser server.

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::tasks::intake::{
    self, FormFields, Submitted, idempotency_key, media_type, read_limited,
};
use super::tasks::load_owned;
use crate::auth::Owner;
use crate::config::ApiConfig;
use crate::dto::{LegacyCreateForm, LegacyCreated, LegacyStatus};
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;

const LEGACY_FIELDS: [&str; 5] = [
    "git_url",
    "zip_file",
    "task_description",
    "target_file",
    "github_token",
];

pub fn router(config: &ApiConfig) -> Router<SharedState> {
    Router::new()
        .route(
            "/api/task",
            post(create_legacy).layer(DefaultBodyLimit::max(config.multipart_body_limit)),
        )
        .route("/api/task/{id}/status", get(legacy_status))
}

/// Submit a task (original API): form fields `git_url` or a `zip_file` part,
/// `task_description`, `target_file`, and `github_token` to have a pull request opened
/// with the changes.
#[utoipa::path(
    post,
    path = "/api/task",
    tag = "legacy",
    request_body(content(
        (LegacyCreateForm = "multipart/form-data"),
        (LegacyCreateForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, body = LegacyCreated),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_legacy(
    State(state): State<SharedState>,
    owner: Owner,
    request: Request,
) -> Result<Json<LegacyCreated>, ApiError> {
    crate::rate_limit::check_submission(&state, &owner.0).await?;
    let key = idempotency_key(request.headers())?;
    let fields = match media_type(request.headers()).as_str() {
        "multipart/form-data" => {
            intake::read_multipart(&state, request, &LEGACY_FIELDS, false).await?
        }
        "application/x-www-form-urlencoded" => {
            let body = read_limited(request.into_body(), state.config.json_body_limit).await?;
            let mut fields = FormFields::default();
            for (name, value) in url::form_urlencoded::parse(&body) {
                if LEGACY_FIELDS.contains(&name.as_ref()) && name != "zip_file" {
                    fields.text.insert(name.into_owned(), value.into_owned());
                }
            }
            fields
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type `{other}` is not accepted; send multipart/form-data or a urlencoded form"
            )));
        }
    };
    let task =
        match intake::create_from_form(&state, owner.0, fields, "task_description", key).await? {
            Submitted::New(task) | Submitted::Existing(task) => task,
        };
    Ok(Json(LegacyCreated {
        task_id: task.id.to_string(),
        status: task.status.as_str().to_string(),
    }))
}

/// A task's status (original API).
#[utoipa::path(
    get,
    path = "/api/task/{id}/status",
    tag = "legacy",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = LegacyStatus),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn legacy_status(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<Json<LegacyStatus>, ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    Ok(Json(LegacyStatus {
        task_id: task.id.to_string(),
        status: task.status.as_str().to_string(),
        message: task.message,
        pr_url: task.pr_url,
    }))
}
