//! `/blobs/{*key}`: the signed URLs of the local blob store.
//!
//! With the embedded profile the blob store is a folder, so someone has to serve the
//! signed GET and PUT URLs the agent and clients are handed: this route. The signature
//! in the query (method, expiry, HMAC) is the only credential, so there is no bearer
//! auth here, and the query string is never logged. Bodies are streamed in both
//! directions; a PUT is capped at `api.blob_put_limit` and lands whole or not at all.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{StreamExt, TryStreamExt};
use orchestrator::blob::{BoxError, LocalBlobStore};
use orchestrator::{BlobError, BlobStore};
use tokio_util::io::ReaderStream;

use super::tasks::intake::too_large;
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;

pub fn router() -> Router<SharedState> {
    Router::new().route("/blobs/{*key}", get(get_blob).put(put_blob))
}

/// The local blob store, once the query's signature is checked for `method` on `key`.
fn verified<'a>(
    state: &'a SharedState,
    method: &str,
    key: &str,
    query: Option<&str>,
) -> Result<&'a LocalBlobStore, ApiError> {
    let blobs = state
        .services
        .local_blobs
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("this server does not serve blobs".into()))?;
    let refuse = |why: &str| ApiError::Forbidden(format!("signed URL refused: {why}"));
    let (mut expires, mut sig) = (None, None);
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "expires" => expires = value.parse::<i64>().ok(),
            "sig" => sig = Some(value.into_owned()),
            _ => {}
        }
    }
    let (Some(expires), Some(sig)) = (expires, sig) else {
        return Err(refuse("the URL carries no valid `expires` and `sig`"));
    };
    blobs
        .verify(method, key, expires, &sig, (state.clock)())
        .map_err(|err| refuse(&err.to_string()))?;
    Ok(blobs)
}

/// Download a blob through a signed GET URL.
#[utoipa::path(
    get,
    path = "/blobs/{key}",
    tag = "blobs",
    params(("key" = String, Path, description = "Blob key; the query carries method, expires and sig")),
    responses(
        (status = 200, description = "The blob's bytes", content_type = "application/octet-stream"),
        (status = 403, description = "Bad, expired or wrong-method signature", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn get_blob(
    State(state): State<SharedState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let blobs = verified(&state, "GET", &key, query.as_deref())?;
    let (file, len) = blobs.open_read(&key).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}

/// Upload a blob through a signed PUT URL.
#[utoipa::path(
    put,
    path = "/blobs/{key}",
    tag = "blobs",
    params(("key" = String, Path, description = "Blob key; the query carries method, expires and sig")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored"),
        (status = 403, description = "Bad, expired or wrong-method signature", body = ErrorBody),
        (status = 413, description = "Over the upload limit", body = ErrorBody),
    )
)]
pub async fn put_blob(
    State(state): State<SharedState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let blobs = verified(&state, "PUT", &key, query.as_deref())?;
    let limit = state.config.blob_put_limit;
    let body = request
        .into_body()
        .into_data_stream()
        .map_err(BoxError::from)
        .boxed();
    match blobs.put_stream(&key, body, limit as u64).await {
        Ok(_) => Ok(StatusCode::OK),
        Err(BlobError::TooLarge { .. }) => Err(too_large(limit)),
        Err(err) => Err(err.into()),
    }
}
