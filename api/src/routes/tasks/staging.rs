//! An uploaded zip, streamed into the blob store as it arrives and checked once whole.
//!
//! Uploads may be up to `multipart_body_limit` (100 MiB by default) and many may arrive
//! at once, so none is held in memory: each chunk of the `zip_file` part goes on to the
//! blob store ([`orchestrator::BlobStore::put_stream`], capped at the same limit) and
//! into an anonymous temporary file, a few chunks in flight at most. A zip's directory
//! is at its end, so it can be checked only once the last byte arrived: then the
//! temporary copy is read the way the worker will extract it
//! ([`crate::validate::check_zip_reader`]), and a refused archive is deleted from the
//! blob store again before the 422, with the message the extraction would give.
//!
//! The zip is staged under its own prefix (`uploads/{uuid}/input.zip`) before the rest
//! of the request is read; its directory is checked ([`ZipCheck::verify`]) after the
//! form's own fields, so a request with a bad field and a bad zip names the field it
//! would name with a good zip. Whoever refuses the request after staging discards the
//! zip ([`StagedZip::discard`]), so a refused request leaves no blob behind.

use std::io::{BufReader, Seek, SeekFrom};

use axum::extract::multipart::{Field, MultipartError};
use bytes::Bytes;
use futures_util::StreamExt;
use orchestrator::BlobStore;
use orchestrator::blob::BoxError;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::state::SharedState;
use crate::validate::check_zip_reader;

/// Chunks on their way to the blob store at once: what an upload holds in memory.
const IN_FLIGHT_CHUNKS: usize = 4;

/// A zip stored under its own prefix, not yet named by any task.
#[derive(Debug)]
pub struct StagedZip {
    /// The uploaded file's name (its last path segment).
    pub name: String,
    /// Where the blob store keeps it.
    pub key: String,
    /// Deleting this removes the upload (`uploads/{uuid}`).
    pub prefix: String,
    pub size: u64,
    /// The temporary copy, until its directory is checked ([`ZipCheck::verify`]).
    spool: Option<std::fs::File>,
}

/// A staged zip's directory, still to be read ([`ZipCheck::verify`]).
#[derive(Debug)]
pub struct ZipCheck {
    spool: Option<std::fs::File>,
    size: u64,
}

impl ZipCheck {
    /// Reads the zip's directory the way the worker will extract it; a refused archive
    /// is a 422 naming `zip_file`. Checked once: a second call has nothing left to read.
    pub async fn verify(&mut self, state: &SharedState) -> Result<(), ApiError> {
        match self.spool.take() {
            Some(spool) => check(state, spool, self.size).await,
            None => Ok(()),
        }
    }
}

impl StagedZip {
    /// The check of this zip's directory, to run once the form's own fields passed.
    pub fn take_check(&mut self) -> ZipCheck {
        ZipCheck {
            spool: self.spool.take(),
            size: self.size,
        }
    }

    /// Deletes the upload; a failure is logged (the blob is an unused leftover).
    pub async fn discard(&self, blobs: &dyn BlobStore) {
        discard(blobs, &self.prefix).await;
    }
}

async fn discard(blobs: &dyn BlobStore, prefix: &str) {
    if let Err(err) = blobs.delete_prefix(prefix).await {
        tracing::warn!(prefix, error = %err, "could not delete an unused upload");
    }
}

/// Streams the `zip_file` part into the blob store and checks it; on any refusal the
/// upload is gone again.
pub async fn stage_zip(
    state: &SharedState,
    name: String,
    field: Field<'_>,
) -> Result<StagedZip, ApiError> {
    let prefix = format!("uploads/{}", uuid::Uuid::new_v4());
    let key = format!("{prefix}/input.zip");
    let blobs = &*state.services.blobs;
    let limit = u64::try_from(state.config.multipart_body_limit).unwrap_or(u64::MAX);
    let spool = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|err| ApiError::Internal(format!("creating an upload's spool file: {err}")))?
        .map_err(|err| ApiError::Internal(format!("creating an upload's spool file: {err}")))?;
    let (sender, receiver) = mpsc::channel(IN_FLIGHT_CHUNKS);
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
    .boxed();
    let (fed, stored) = tokio::join!(
        feed(field, tokio::fs::File::from_std(spool), sender),
        blobs.put_stream(&key, body, limit),
    );
    // The store's answer first: a cap it enforced also ends the feed early.
    let checked = match (stored, fed) {
        (Err(orchestrator::BlobError::TooLarge { .. }), _) => Err(ApiError::PayloadTooLarge(
            format!("the upload is too large: zip_file is over the {limit}-byte limit"),
        )),
        (_, Err(err)) => Err(err),
        (Err(err), Ok(_)) => Err(err.into()),
        (Ok(size), Ok(spool)) => Ok((size, spool)),
    };
    match checked {
        Ok((size, spool)) => Ok(StagedZip {
            name,
            key,
            prefix,
            size,
            spool: Some(spool),
        }),
        Err(err) => {
            discard(blobs, &prefix).await;
            Err(err)
        }
    }
}

/// Copies the part's chunks to the spool file and the blob store's body. A broken part
/// or spool ends the body with an error, so the store keeps nothing.
async fn feed(
    mut field: Field<'_>,
    mut spool: tokio::fs::File,
    sender: mpsc::Sender<Result<Bytes, BoxError>>,
) -> Result<std::fs::File, ApiError> {
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => {
                let err = multipart_error(err);
                let _ = sender.send(Err(err.to_string().into())).await;
                return Err(err);
            }
        };
        if let Err(err) = spool.write_all(&chunk).await {
            let _ = sender.send(Err("the spool file failed".into())).await;
            return Err(ApiError::Internal(format!("spooling an upload: {err}")));
        }
        if sender.send(Ok(chunk)).await.is_err() {
            // The store stopped reading (over its cap, or failed): its answer says why.
            break;
        }
    }
    spool
        .flush()
        .await
        .map_err(|err| ApiError::Internal(format!("spooling an upload: {err}")))?;
    Ok(spool.into_std().await)
}

/// The zip's directory, read from the spool as the worker's extraction would.
async fn check(state: &SharedState, mut spool: std::fs::File, size: u64) -> Result<(), ApiError> {
    let rules = state.draft_rules.zip.clone();
    tokio::task::spawn_blocking(move || {
        spool
            .seek(SeekFrom::Start(0))
            .map_err(|err| ApiError::Internal(format!("reading an upload's spool file: {err}")))?;
        check_zip_reader(BufReader::new(spool), size, &rules).map_err(|message| {
            ApiError::InvalidField {
                field: "zip_file".to_string(),
                message,
            }
        })
    })
    .await
    .map_err(|err| ApiError::Internal(format!("checking an upload: {err}")))?
}

/// A multipart failure as the client's error: over the body limit is 413.
pub fn multipart_error(err: MultipartError) -> ApiError {
    if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("the upload is too large: {}", err.body_text()))
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", err.body_text()))
    }
}
