//! `/healthz`, `/readyz`, `/metrics`, `/api/v1/openapi.json`: what operators and tools
//! read, without auth.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::error::{ApiError, ErrorBody};
use crate::openapi::ApiDoc;
use crate::state::SharedState;

/// What every role serves, the public ones with the OpenAPI document.
pub fn router() -> Router<SharedState> {
    health_router().route("/api/v1/openapi.json", get(openapi))
}

/// Health, readiness and metrics: all a worker process serves.
pub fn health_router() -> Router<SharedState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// What this process's role needs works: the store answers, the data disk has room,
/// and (a process that runs agents) the queue answers, its worker loops run and its
/// reconciler passes. A status cache that is down does not make the process unready (the
/// store is the truth, status and events are read from it, slower), nor does a queue
/// that is down in a process that only publishes to it (new tasks wait in the outbox);
/// the answer says it is degraded.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "`ready`, or `ready (degraded: ...)` naming what is slower"),
    (status = 503, description = "not ready; the message says why", body = ErrorBody),
))]
pub async fn readyz(State(state): State<SharedState>) -> Result<String, ApiError> {
    crate::readiness::check(&state).await?;
    Ok(match crate::readiness::degraded(&state).await {
        None => "ready".to_string(),
        Some(reason) => format!("ready (degraded: {reason})"),
    })
}

/// Prometheus text exposition: this process's requests, the orchestrator's counters
/// (worker, reconciler), the queue's depth, and live tasks by status (one grouped count
/// of unfinished rows, reused for a while: a scrape never reads task rows).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain"),
))]
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let live = state.metrics.live_tasks(&*state.services.store).await;
    let depth = state.queue_depth.as_ref().map(|depth| depth());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&live, depth),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops", responses(
    (status = 200, description = "OpenAPI 3 document", content_type = "application/json"),
))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
