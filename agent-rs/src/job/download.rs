//! Fetching the workspace archive to a local file.
//!
//! The archive goes to an anonymous temporary file, not memory: a workspace can be
//! large. The size cap is enforced twice, on the announced `Content-Length` (refused
//! before a byte is read) and on the bytes actually received (a server may not announce
//! the size, or lie about it).

use std::fs::File;

use tokio::io::AsyncWriteExt;
use url::Url;

use super::http::{self, AttemptError, TransferPolicy};
use super::urls;

/// Why the workspace could not be downloaded. The message names the URL without its
/// query string.
#[derive(Debug, thiserror::Error)]
#[error("cannot download the workspace from {url}: {reason}")]
pub struct DownloadError {
    pub url: String,
    pub reason: String,
    /// The store kept failing in a way that passes (unreachable, 5xx, timeouts) until the
    /// retries ran out: the infrastructure failed, not the input.
    pub transient: bool,
}

/// Downloads `url` into a temporary file (rewound, ready to read), refusing more than
/// `max_bytes`.
pub async fn download_workspace(
    url: &Url,
    max_bytes: u64,
    policy: &TransferPolicy,
) -> Result<File, DownloadError> {
    let shown = urls::redacted(url);
    let fail = |reason: String| DownloadError {
        url: shown.clone(),
        reason,
        transient: false,
    };
    let client = http::client(policy).map_err(|err| fail(err.message))?;
    let (mut staging, received) = http::with_retries(policy, "workspace download", || {
        fetch_once(&client, url, max_bytes, policy)
    })
    .await
    .map_err(|err| DownloadError {
        transient: err.retryable,
        ..fail(err.message)
    })?;
    tracing::info!(url = %shown, bytes = received, "workspace downloaded");
    std::io::Seek::rewind(&mut staging)
        .map_err(|err| fail(format!("cannot read back the download: {err}")))?;
    Ok(staging)
}

/// One attempt, into a fresh temporary file (a failed attempt's file is dropped, and
/// with it its disk space).
async fn fetch_once(
    client: &reqwest::Client,
    url: &Url,
    max_bytes: u64,
    policy: &TransferPolicy,
) -> Result<(File, u64), AttemptError> {
    let local = |err: std::io::Error| {
        AttemptError::fatal(format!(
            "cannot write the download to a temporary file: {err}"
        ))
    };
    let mut staging = tokio::fs::File::from_std(tempfile::tempfile().map_err(local)?);
    let mut response = client
        .get(url.clone())
        .timeout(policy.attempt_timeout)
        .send()
        .await
        .map_err(AttemptError::from_reqwest)?;
    if !response.status().is_success() {
        return Err(AttemptError::from_status(response.status()));
    }
    let too_large = || {
        AttemptError::fatal(format!(
            "the archive is larger than {max_bytes} bytes (AGENT_MAX_WORKSPACE_BYTES)"
        ))
    };
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes)
    {
        return Err(too_large());
    }
    let mut received: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(AttemptError::from_reqwest)? {
        received += chunk.len() as u64;
        if received > max_bytes {
            return Err(too_large());
        }
        staging.write_all(&chunk).await.map_err(local)?;
    }
    staging.flush().await.map_err(local)?;
    Ok((staging.into_std().await, received))
}
