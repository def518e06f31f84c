//! Sending the run's outputs to their presigned PUT URLs.
//!
//! Every requested file is tried, even after one failed, so the orchestrator gets as
//! much of the record as the store accepts. The body goes without a `Content-Type`: a
//! presigned URL may have signed one, and a header it did not sign would break it.

use std::collections::BTreeMap;
use std::path::Path;

use url::Url;

use super::http::{self, AttemptError, TransferPolicy};
use super::spec::UPLOADABLE_OUTPUTS;
use super::urls;

/// One output that did not reach the store.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot upload {name} to {url}: {reason}")]
pub struct UploadError {
    pub name: String,
    /// Without its query string.
    pub url: String,
    pub reason: String,
}

/// PUTs each file of `targets` (name -> URL) from `output_dir`, in [`UPLOADABLE_OUTPUTS`]
/// order. Returns the failures, empty when everything arrived.
pub async fn upload_outputs(
    output_dir: &Path,
    targets: &BTreeMap<String, Url>,
    policy: &TransferPolicy,
) -> Vec<UploadError> {
    let mut failures = Vec::new();
    let client = match http::client(policy) {
        Ok(client) => client,
        Err(err) => {
            return targets
                .iter()
                .map(|(name, url)| failure(name, url, err.message.clone()))
                .collect();
        }
    };
    for name in UPLOADABLE_OUTPUTS {
        let Some(url) = targets.get(name) else {
            continue;
        };
        match upload_one(&client, &output_dir.join(name), url, policy).await {
            Ok(bytes) => {
                tracing::info!(file = name, url = %urls::redacted(url), bytes, "uploaded");
            }
            Err(reason) => {
                let err = failure(name, url, reason);
                tracing::error!(%err, "upload failed");
                failures.push(err);
            }
        }
    }
    failures
}

fn failure(name: &str, url: &Url, reason: String) -> UploadError {
    UploadError {
        name: name.to_string(),
        url: urls::redacted(url),
        reason,
    }
}

async fn upload_one(
    client: &reqwest::Client,
    file: &Path,
    url: &Url,
    policy: &TransferPolicy,
) -> Result<usize, String> {
    let body = tokio::fs::read(file)
        .await
        .map_err(|err| format!("the run did not produce it ({err})"))?;
    let size = body.len();
    http::with_retries(policy, "output upload", || {
        let request = client
            .put(url.clone())
            .timeout(policy.attempt_timeout)
            .body(body.clone());
        async move {
            let response = request.send().await.map_err(AttemptError::from_reqwest)?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(AttemptError::from_status(response.status()))
            }
        }
    })
    .await
    .map_err(|err| err.message)?;
    Ok(size)
}
