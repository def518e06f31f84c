//! The REST face of the platform: tasks in, events and artifacts out.
//!
//! Routers are composed per area ([`routes`]): `/api/v1/tasks` (create, read, list,
//! cancel, SSE events, artifacts), the original `/api/task` routes, the local blob
//! store's signed URLs (`/blobs/...`), and health, readiness, metrics and the OpenAPI
//! document. Handlers share an [`AppState`] holding the orchestrator's services as trait
//! objects, so the same code serves the embedded profile and the cluster one. The binary
//! (`api`) builds the embedded services and, by its [`Role`], serves the public routes,
//! runs the worker and reconciler, or both.

pub mod auth;
pub mod config;
pub mod demo;
pub mod dto;
pub mod embedded;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod readiness;
pub mod role;
pub mod routes;
pub mod state;
pub mod uploads;
pub mod validate;
pub mod web;

use std::future::Future;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tower_http::timeout::{RequestBodyTimeoutLayer, ResponseBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use config::ApiConfig;
pub use error::ApiError;
pub use role::Role;
pub use state::{ApiServices, AppState, SharedState};

/// The whole application: every router, with tracing, metrics and timeouts.
pub fn app(state: SharedState) -> Router {
    app_for(Role::All, state)
}

/// What a process in `role` serves: every router, or (a worker) health, readiness and
/// metrics only.
pub fn app_for(role: Role, state: SharedState) -> Router {
    if role.serves_public_routes() {
        return public_app(state);
    }
    let timeout = state.config.request_timeout();
    layered(
        routes::ops::health_router().layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        )),
        state,
    )
}

fn public_app(state: SharedState) -> Router {
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
    // Blob transfers take as long as their bytes: a long deadline for the whole
    // request, and a short one for a body on which nothing moves.
    let blobs = routes::blobs::router()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.blob_timeout(),
        ))
        .layer(RequestBodyTimeoutLayer::new(config.blob_idle_timeout()))
        .layer(ResponseBodyTimeoutLayer::new(config.blob_idle_timeout()));
    let routes =
        Router::new()
            .merge(timed)
            .merge(blobs)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                uploads::limit,
            ));
    layered(routes, state)
}

/// The fallback, metrics and tracing every role's router gets.
fn layered(routes: Router<SharedState>, state: SharedState) -> Router {
    routes
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
    serve_role(Role::All, listener, state, shutdown).await
}

/// As [`serve`], with what `role` serves.
pub async fn serve_role(
    role: Role,
    listener: TcpListener,
    state: SharedState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_streams = state.shutdown.clone();
    axum::serve(listener, app_for(role, state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop_streams.cancel();
        })
        .await
}
