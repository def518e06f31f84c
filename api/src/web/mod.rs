//! The web page: a browser front end served by the API itself.
//!
//! People who hand work to an agent want to look, not read JSON: the page signs in with
//! an API token, submits tasks, lists them, follows one live and shows its diff. It is
//! plain HTML, CSS and JavaScript modules under `api/web/`, built into the binary
//! ([`assets`]), with no build step and nothing loaded from elsewhere. The page talks to
//! the server only through the public REST API, exactly as any other client does.
//!
//! Every response of the page carries a strict Content-Security-Policy and the usual
//! hardening headers ([`headers`]): scripts and styles come from this origin only, no
//! inline script or style, and Trusted Types forbid writing HTML from strings, so data
//! the agent or a user wrote can only ever reach the page as text.

mod assets;
pub mod event_ticket;
mod headers;

use axum::Router;
use axum::routing::{get, post};

use crate::state::SharedState;

pub use assets::{ASSETS, Asset};
pub use headers::CONTENT_SECURITY_POLICY;

/// `/` (the page) and `/assets/{file}` (its scripts, styles and icon), without auth:
/// nothing in them is secret; the data comes from the API with the token. Also the
/// event-ticket routes, which exist for browsers' `EventSource`.
pub fn router() -> Router<SharedState> {
    let page = Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .layer(axum::middleware::map_response(headers::harden));
    page.route(
        "/api/v1/tasks/{id}/events/ticket",
        post(event_ticket::issue_ticket),
    )
    .route(
        "/api/v1/tasks/updates/ticket",
        post(event_ticket::issue_updates_ticket),
    )
}
