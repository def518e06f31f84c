//! The REST face of the platform: tasks in, events and artifacts out.
//!
//! Routers are composed per area ([`routes`]): `/api/v1/tasks` (create, read, list,
//! cancel, SSE events, artifacts), the original `/api/task` routes, the local blob
//! store's signed URLs (`/blobs/...`), and health, readiness, metrics and the OpenAPI
//! document. Handlers share an [`AppState`] holding the orchestrator's services as trait
//! objects, so the same code serves the embedded profile and the cluster one. The binary
//! (`api`) builds the embedded services and runs the worker in the same process.

pub mod auth;
pub mod config;
pub mod dto;
pub mod embedded;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod validate;
pub mod web;

use std::future::Future;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use config::ApiConfig;
pub use error::ApiError;
pub use state::{ApiServices, AppState, SharedState};

/// The whole application: every router, with tracing, metrics and timeouts.
pub fn app(state: SharedState) -> Router {
    let config = &state.config;
    let timed = Router::new()
        .merge(routes::tasks::router(config))
        .merge(routes::legacy::router(config))
        .merge(routes::ops::router())
        .merge(web::router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout(),
        ));
    Router::new()
        .merge(timed)
        // Blob transfers are as long as the bytes take; no timeout.
        .merge(routes::blobs::router())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

/// The span of one request: method, route pattern and path. Never the query string
/// (signed blob URLs carry their signature there) nor any header (`Authorization`).
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        path = %request.uri().path(),
    )
}

/// Serves `state` on `listener` until `shutdown` resolves, then stops accepting and
/// waits for in-flight requests (SSE streams end when `state.shutdown` is cancelled).
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_streams = state.shutdown.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop_streams.cancel();
        })
        .await
}
