//! The one error type every handler returns, and its JSON shape.
//!
//! Clients get `{"error": {"code", "message"}}` with a status that says whose fault it
//! was; the code is stable (scripts match on it), the message is for people. Store and
//! blob failures are logged here with their detail and shown to the client only as a
//! generic 5xx, so internals (paths, SQL) never leak into a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orchestrator::tasks::CancelError;
use orchestrator::{BlobError, CacheError, QueueError, StoreError, TransitionError};
use serde::Serialize;
use utoipa::ToSchema;

/// A request that failed, with the status and code it is reported as.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: bad JSON syntax, broken multipart, a bad header.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid fields: unknown or missing field, bad URL, blank text.
    #[error("{0}")]
    Invalid(String),
    /// An invalid field the client can point at (`git_url`, `description`...).
    #[error("{message}")]
    InvalidField { field: String, message: String },
    #[error("missing or invalid bearer token; send `Authorization: Bearer TOKEN`")]
    Unauthorized,
    /// Also what another owner's task looks like: its existence is not revealed.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Forbidden(String),
    /// Our side failed; the detail is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    /// The caller is over a per-owner limit; `retry_after_secs` goes out as
    /// `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// The server is at a capacity limit (concurrent uploads); retry after a while.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `invalid_request`, `not_found`...
    pub code: &'static str,
    pub message: String,
    /// The request field the error is about, when it is about one (`git_url`,
    /// `description`, `max_turns`...): forms show the message next to that field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) | ApiError::InvalidField { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Invalid(_) | ApiError::InvalidField { .. } => "invalid_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Internal(_) => "internal",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Busy { .. } => "busy",
        }
    }

    pub fn task_not_found(id: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("task {id} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                "internal error; the server log has the detail".to_string()
            }
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::InvalidField { field, .. } => Some(field.clone()),
            _ => None,
        };
        let retry_after = match &self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            }
            | ApiError::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::validate::FieldError> for ApiError {
    fn from(err: crate::validate::FieldError) -> Self {
        ApiError::InvalidField {
            field: err.field.to_string(),
            message: err.message,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable { .. } => {
                tracing::error!(error = %err, "task store unavailable");
                ApiError::Unavailable("the task store is unavailable; retry shortly".into())
            }
            StoreError::InvalidCursor(_) => ApiError::Invalid(
                "cursor is not one this server handed out; pass next_cursor from the previous page"
                    .into(),
            ),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(err: CancelError) -> Self {
        match err {
            CancelError::NotFound(id) => ApiError::task_not_found(id),
            CancelError::Store(store) => store.into(),
            other @ (CancelError::AlreadyFinished(_) | CancelError::KeptChanging(_)) => {
                ApiError::Conflict(other.to_string())
            }
        }
    }
}

impl From<TransitionError> for ApiError {
    fn from(err: TransitionError) -> Self {
        match err {
            TransitionError::NotFound(id) => ApiError::task_not_found(id),
            TransitionError::Store(store) => store.into(),
            other => ApiError::Conflict(other.to_string()),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(err: BlobError) -> Self {
        match err {
            BlobError::NotFound(key) => ApiError::NotFound(format!("`{key}` not found")),
            BlobError::InvalidKey(key) => ApiError::BadRequest(format!("invalid key `{key}`")),
            BlobError::TooLarge { max_bytes, .. } => {
                ApiError::PayloadTooLarge(format!("the body is over the {max_bytes}-byte limit"))
            }
            BlobError::Body { source, .. } => {
                ApiError::BadRequest(format!("reading the upload: {source}"))
            }
            err if err.is_transient() => {
                tracing::error!(error = %err, "blob store unavailable");
                ApiError::Unavailable("the blob store is unavailable; retry shortly".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<CacheError> for ApiError {
    fn from(err: CacheError) -> Self {
        if err.is_transient() {
            tracing::error!(error = %err, "status cache unavailable");
            ApiError::Unavailable("the status cache is unavailable; retry shortly".into())
        } else {
            ApiError::Internal(err.to_string())
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        if err.is_transient() {
            tracing::error!(error = %err, "queue unavailable");
            ApiError::Unavailable("the queue is unavailable; retry shortly".into())
        } else {
            ApiError::Internal(err.to_string())
        }
    }
}
