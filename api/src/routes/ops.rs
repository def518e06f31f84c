//! `/healthz`, `/readyz`, `/metrics`, `/api/v1/openapi.json`: what operators and tools
//! read, without auth.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use orchestrator::{TaskFilter, TaskId, TaskStatus};
use utoipa::OpenApi;

use crate::error::{ApiError, ErrorBody};
use crate::openapi::ApiDoc;
use crate::state::SharedState;

/// Pages read per status when counting live tasks for `/metrics`.
const MAX_COUNT_PAGES: usize = 100;
const COUNT_PAGE: u32 = 100;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The task store answers.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "ready"),
    (status = 503, description = "the store is unreachable", body = ErrorBody),
))]
pub async fn readyz(State(state): State<SharedState>) -> Result<&'static str, ApiError> {
    state
        .services
        .store
        .get(TaskId(uuid::Uuid::nil()))
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "readiness check failed");
            ApiError::Unavailable("the task store is unreachable".into())
        })?;
    Ok("ready")
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain"),
))]
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let mut live = Vec::new();
    for status in TaskStatus::ALL.into_iter().filter(|s| !s.is_terminal()) {
        match count_status(&state, status).await {
            Ok(count) => live.push((status.as_str(), count)),
            Err(err) => tracing::warn!(error = %err, "counting tasks for /metrics failed"),
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&live),
    )
        .into_response()
}

/// Live tasks in `status`, by paging the store (live tasks are few; terminal ones are
/// not counted).
async fn count_status(state: &SharedState, status: TaskStatus) -> Result<u64, ApiError> {
    let mut count = 0u64;
    let mut cursor = None;
    for _ in 0..MAX_COUNT_PAGES {
        let page = state
            .services
            .store
            .list(TaskFilter {
                owner: None,
                status: Some(status),
                limit: COUNT_PAGE,
                cursor,
            })
            .await?;
        count += page.tasks.len() as u64;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(count)
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops", responses(
    (status = 200, description = "OpenAPI 3 document", content_type = "application/json"),
))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
