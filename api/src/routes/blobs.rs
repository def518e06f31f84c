//! `/blobs/{*key}`: the signed URLs of the local blob store.
//!
//! With the embedded profile the blob store is a folder, so someone has to serve the
//! signed GET and PUT URLs the agent and clients are handed: this route. The signature
//! in the query (method, expiry, HMAC) is the only credential, so there is no bearer
//! auth here, and the query string is never logged. Bodies are streamed through a
//! temporary file in both directions, so a large tarball never sits in memory; a PUT is
//! capped at `api.blob_put_limit`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::tasks::intake::too_large;
use crate::error::{ApiError, ErrorBody};
use crate::state::{BlobUrlVerifier, SharedState};

pub fn router() -> Router<SharedState> {
    Router::new().route("/blobs/{*key}", get(get_blob).put(put_blob))
}

fn verify(
    state: &SharedState,
    method: &str,
    key: &str,
    query: Option<&str>,
) -> Result<(), ApiError> {
    let verifier: &dyn BlobUrlVerifier = state
        .services
        .blob_urls
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("this server does not serve blobs".into()))?;
    verifier
        .verify(method, key, query.unwrap_or_default())
        .map_err(|why| ApiError::Forbidden(format!("signed URL refused: {why}")))?;
    orchestrator::blob::validate_key(key)?;
    Ok(())
}

fn temp_error(err: std::io::Error) -> ApiError {
    ApiError::Internal(format!("temporary file for a blob transfer: {err}"))
}

/// Download a blob through a signed GET URL.
#[utoipa::path(
    get,
    path = "/blobs/{key}",
    tag = "blobs",
    params(("key" = String, Path, description = "Blob key; the query carries the signature")),
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
    verify(&state, "GET", &key, query.as_deref())?;
    let temp = tempfile::NamedTempFile::new().map_err(temp_error)?;
    state.services.blobs.get_file(&key, temp.path()).await?;
    let file = tokio::fs::File::open(temp.path())
        .await
        .map_err(temp_error)?;
    let len = file.metadata().await.map_err(temp_error)?.len();
    // The open handle keeps the bytes readable once the name is gone.
    drop(temp);
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
    params(("key" = String, Path, description = "Blob key; the query carries the signature")),
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
    verify(&state, "PUT", &key, query.as_deref())?;
    let limit = state.config.blob_put_limit;
    let temp = tempfile::NamedTempFile::new().map_err(temp_error)?;
    let mut file = tokio::fs::File::create(temp.path())
        .await
        .map_err(temp_error)?;
    let mut body = request.into_body().into_data_stream();
    let mut written = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::BadRequest(format!("reading the upload: {err}")))?;
        written += chunk.len();
        if written > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(temp_error)?;
    }
    file.flush().await.map_err(temp_error)?;
    drop(file);
    state.services.blobs.put_file(&key, temp.path()).await?;
    Ok(StatusCode::OK)
}
