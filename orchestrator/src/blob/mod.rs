//! Blob storage: uploaded zips, workspace tarballs, and each task's outputs.
//!
//! The agent never holds storage credentials: it gets signed URLs (GET for its input, PUT
//! for each output) that expire. Implementations: `LocalBlobStore` (a folder; the API
//! serves its signed URLs, checked by HMAC and expiry) and `S3BlobStore` (S3 / COS /
//! any S3-compatible store; SigV4 presigned URLs).
//! Every implementation passes the blob contract suite, and its errors say whether a
//! retry can help ([`BlobError::is_transient`]).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

pub mod local;
pub mod s3;
pub mod signing;

pub use local::{LocalBlobConfigError, LocalBlobStore};
pub use s3::{S3BlobStore, S3Config};
pub use signing::{SignatureError, SignedMethod, SignedQuery, generate_signing_key};

/// A boxed error from a backend client or a request body, kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body to store, chunk by chunk; an `Err` item aborts the upload.
pub type ByteStream = BoxStream<'static, Result<Bytes, BoxError>>;

/// The longest a signed URL may live: SigV4 presigned URLs allow at most 7 days, and every
/// implementation keeps to it so a URL that works on one profile works on the other.
/// Longer requests are refused ([`BlobError::TtlTooLong`]), not shortened: a caller that
/// asked for a week and a day must learn it cannot have it.
pub const MAX_SIGNED_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob `{0}` not found")]
    NotFound(String),
    #[error("invalid blob key `{0}`")]
    InvalidKey(String),
    /// A read or write past the caller's cap; nothing was stored or returned.
    #[error("blob `{key}` is larger than the {max_bytes}-byte limit")]
    TooLarge { key: String, max_bytes: u64 },
    /// The body being stored failed (the uploader's side); nothing was stored.
    #[error("the body for `{key}` broke off: {source}")]
    Body {
        key: String,
        #[source]
        source: BoxError,
    },
    #[error("signed URLs live at most {max:?} (SigV4's limit); {requested:?} was asked for")]
    TtlTooLong { requested: Duration, max: Duration },
    /// The store could not be reached or failed; worth retrying with backoff.
    #[error("blob store unavailable ({context}): {source}")]
    Unavailable {
        context: String,
        #[source]
        source: BoxError,
    },
    /// The store did not answer in time; worth retrying with backoff.
    #[error("blob store did not answer within {after:?} ({context})")]
    Timeout { context: String, after: Duration },
    /// The store refused for good (access denied, bad configuration...).
    #[error("blob store refused ({context}): {source}")]
    Rejected {
        context: String,
        #[source]
        source: BoxError,
    },
    #[error("blob store I/O on `{key}`: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

impl BlobError {
    /// Whether trying again later may succeed (the caller retries with backoff).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Timeout { .. } => true,
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::ResourceBusy
            ),
            _ => false,
        }
    }
}

/// Refuses lifetimes a SigV4 presigned URL could not have.
pub fn check_signed_url_ttl(ttl: Duration) -> Result<(), BlobError> {
    if ttl > MAX_SIGNED_URL_TTL {
        return Err(BlobError::TtlTooLong {
            requested: ttl,
            max: MAX_SIGNED_URL_TTL,
        });
    }
    Ok(())
}

/// Keys are `/`-separated relative paths (`tasks/{id}/workspace.tar.gz`); no `..`, no
/// leading `/`, no empty segments.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let bad = key.is_empty()
        || key.len() > 512
        || key.starts_with('/')
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || key.chars().any(|c| c.is_control() || c == '\\');
    if bad {
        Err(BlobError::InvalidKey(key.to_string()))
    } else {
        Ok(())
    }
}

/// Every write lands whole or not at all: a reader never sees half a blob, and a failed
/// or cancelled write leaves the previous blob (if any) in place.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;

    /// Uploads a local file (large tarballs go this way, not through memory).
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError>;

    /// Stores a body as it arrives, holding a bounded part of it in memory (S3: one
    /// multipart part). More than `max_bytes` is [`BlobError::TooLarge`] and a failing
    /// body is [`BlobError::Body`]; either way nothing is stored. Returns the size.
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        max_bytes: u64,
    ) -> Result<u64, BlobError>;

    /// Reads a whole blob into memory; one larger than `max_bytes` is
    /// [`BlobError::TooLarge`] (nothing past the cap is read).
    async fn get_bytes(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError>;

    /// Downloads to a local file.
    async fn get_file(&self, key: &str, path: &Path) -> Result<(), BlobError>;

    async fn exists(&self, key: &str) -> Result<bool, BlobError>;

    /// Deletes every blob under `prefix` (a task's leftovers). Prefixes end at a `/`:
    /// `tasks/1` removes `tasks/1` and `tasks/1/...`, never `tasks/10`.
    async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError>;

    /// A URL anyone holding it may GET until `ttl` passes (at most
    /// [`MAX_SIGNED_URL_TTL`]; longer is [`BlobError::TtlTooLong`]).
    async fn signed_get_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError>;

    /// A URL anyone holding it may PUT the blob's bytes to until `ttl` passes (at most
    /// [`MAX_SIGNED_URL_TTL`]).
    async fn signed_put_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_are_invalid() {
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a/", "a\\b", "a\nb"] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        for good in ["tasks/1/workspace.tar.gz", "zips/x.zip", "a"] {
            assert!(validate_key(good).is_ok(), "{good:?}");
        }
    }
}
