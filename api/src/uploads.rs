//! The cap on uploads in progress at once: each holds a connection, a task and buffers
//! for as long as its bytes take, so a burst of them must not exhaust the server.
//!
//! An upload is a multipart task creation (`POST` with a `multipart/form-data` body) or
//! a `PUT` to `/blobs/...` (an agent's outputs). Each takes a permit for the whole
//! request, body included; when none is free the request is refused at once with 503
//! and `Retry-After`, before any byte of its body is read.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::state::SharedState;

/// Seconds a refused uploader is told to wait.
const RETRY_AFTER_SECS: u64 = 5;

/// The permits: `None` when uploads are not capped.
#[derive(Debug, Clone)]
pub struct UploadSlots(Option<Arc<Semaphore>>);

impl UploadSlots {
    /// `cap` uploads at once; 0 for no cap.
    pub fn new(cap: usize) -> Self {
        Self((cap > 0).then(|| Arc::new(Semaphore::new(cap))))
    }
}

fn is_upload(request: &Request) -> bool {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    match *request.method() {
        Method::PUT => request.uri().path().starts_with("/blobs/"),
        Method::POST => multipart,
        _ => false,
    }
}

/// Middleware: takes an upload slot for uploads, refuses them when none is free.
pub async fn limit(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let Some(slots) = &state.uploads.0 else {
        return next.run(request).await;
    };
    if !is_upload(&request) {
        return next.run(request).await;
    }
    let Ok(_permit) = slots.clone().try_acquire_owned() else {
        tracing::warn!(path = %request.uri().path(), "upload refused: every upload slot is taken");
        return ApiError::Busy {
            message: "too many uploads in progress; retry shortly".into(),
            retry_after_secs: RETRY_AFTER_SECS,
        }
        .into_response();
    };
    next.run(request).await
}
