//! Blob storage: uploaded zips, workspace tarballs, and each task's outputs.
//!
//! The agent never holds storage credentials: it gets signed URLs (GET for its input, PUT
//! for each output) that expire. Implementations: `LocalBlobStore` (a folder; the API
//! serves its signed URLs, checked by HMAC and expiry) and, later, S3/COS (presigned).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

pub mod local;
pub mod signing;

pub use local::{LocalBlobConfigError, LocalBlobStore, StreamWriteError};
pub use signing::{SignatureError, SignedMethod, SignedQuery, generate_signing_key};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob `{0}` not found")]
    NotFound(String),
    #[error("invalid blob key `{0}`")]
    InvalidKey(String),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    #[error("blob store I/O on `{key}`: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
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

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;

    /// Uploads a local file (large tarballs go this way, not through memory).
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError>;

    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, BlobError>;

    /// Downloads to a local file.
    async fn get_file(&self, key: &str, path: &Path) -> Result<(), BlobError>;

    async fn exists(&self, key: &str) -> Result<bool, BlobError>;

    /// Deletes every blob under `prefix` (a task's leftovers).
    async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError>;

    /// A URL anyone holding it may GET until `ttl` passes.
    async fn signed_get_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError>;

    /// A URL anyone holding it may PUT the blob's bytes to until `ttl` passes.
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
