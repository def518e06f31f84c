//! How to reach an S3-compatible object store: endpoint, region, addressing style,
//! buckets and credentials.
//!
//! Two buckets, as in the original design: `code_bucket` holds what goes in (uploaded
//! zips, workspace tarballs) and `logs_bucket` what comes out (each run's outputs under
//! `tasks/{id}/outputs/`). They may be the same bucket.
//!
//! Tencent COS wants virtual-hosted style at `https://cos.<region>.myqcloud.com` (buckets
//! created since 2024 refuse path style); MinIO and s3s-fs on loopback want path style.
//! Credentials never come from the config file: [`S3Config::or_env_credentials`] reads
//! them from the environment (or set [`S3Config::credentials`] in code).

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// How a bucket appears in request URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Addressing {
    /// `https://{bucket}.{endpoint host}/{key}`: AWS and COS.
    #[default]
    VirtualHosted,
    /// `http://{endpoint}/{bucket}/{key}`: MinIO, s3s-fs, most local servers.
    Path,
}

/// A static access key (COS calls the pair SecretId / SecretKey).
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3Credentials(..)")
    }
}

impl S3Credentials {
    /// The environment names every S3 tool reads.
    pub const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
    pub const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
}

/// The S3 / COS blob store's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `https://cos.ap-guangzhou.myqcloud.com`, `http://127.0.0.1:9100`; unset means AWS's
    /// own endpoint for the region.
    pub endpoint: Option<String>,
    pub region: String,
    pub addressing: Addressing,
    /// Uploaded code and workspace tarballs.
    pub code_bucket: String,
    /// Each run's outputs (`tasks/{id}/outputs/...`).
    pub logs_bucket: String,
    /// Create the buckets at connect when they are missing (development and tests; in
    /// production they are provisioned with their lifecycle rules).
    pub create_buckets: bool,
    /// Size of one multipart part, and of the body buffered before an upload goes
    /// multipart. S3 needs at least 5 MiB for every part but the last.
    pub part_size_mib: u64,
    /// Connecting to the store.
    pub connect_timeout_ms: u64,
    /// Waiting for the next bytes of an answer.
    pub read_timeout_ms: u64,
    /// Attempts per request (the SDK retries transient failures with backoff).
    pub max_attempts: u32,
    /// Never read from the file: see [`S3Config::or_env_credentials`].
    #[serde(skip)]
    pub credentials: Option<S3Credentials>,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".to_string(),
            addressing: Addressing::default(),
            code_bucket: "codex-code".to_string(),
            logs_bucket: "codex-logs".to_string(),
            create_buckets: false,
            part_size_mib: 8,
            connect_timeout_ms: 5_000,
            read_timeout_ms: 60_000,
            max_attempts: 3,
            credentials: None,
        }
    }
}

impl S3Config {
    /// Fills unset credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub fn or_env_credentials(self) -> Self {
        self.or_credentials_from(|name| std::env::var(name).ok())
    }

    /// Fills unset credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` as
    /// `var` reads them (the process environment, or a map in tests).
    pub fn or_credentials_from(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        if self.credentials.is_none() {
            let var = |name: &str| var(name).filter(|v| !v.is_empty());
            if let (Some(id), Some(secret)) = (
                var(S3Credentials::ACCESS_KEY_ENV),
                var(S3Credentials::SECRET_KEY_ENV),
            ) {
                self.credentials = Some(S3Credentials {
                    access_key_id: SecretString::from(id),
                    secret_access_key: SecretString::from(secret),
                });
            }
        }
        self
    }

    /// The part size in bytes, raised to S3's 5 MiB minimum.
    pub fn part_size(&self) -> usize {
        let mib = usize::try_from(self.part_size_mib).unwrap_or(usize::MAX);
        mib.max(5).saturating_mul(1 << 20)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms.max(1))
    }
}

/// Settings the store cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    #[error(
        "no S3 credentials: set {} and {}",
        S3Credentials::ACCESS_KEY_ENV,
        S3Credentials::SECRET_KEY_ENV
    )]
    NoCredentials,
    #[error("S3 endpoint `{endpoint}` is not an http(s) URL")]
    BadEndpoint { endpoint: String },
    #[error("S3 {which} bucket name is empty")]
    NoBucket { which: &'static str },
    #[error("S3 bucket `{bucket}` is not usable: {source}")]
    Bucket {
        bucket: String,
        #[source]
        source: super::super::BlobError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_section_reads_and_keeps_defaults() {
        let config: S3Config = serde_json::from_value(serde_json::json!({
            "endpoint": "https://cos.ap-guangzhou.myqcloud.com",
            "region": "ap-guangzhou",
            "code_bucket": "code-1250000000",
        }))
        .unwrap();
        assert_eq!(config.addressing, Addressing::VirtualHosted);
        assert_eq!(config.logs_bucket, "codex-logs");
        assert_eq!(config.part_size(), 8 << 20);
        let path: S3Config = serde_json::from_str(r#"{"addressing": "path"}"#).unwrap();
        assert_eq!(path.addressing, Addressing::Path);
    }

    #[test]
    fn credentials_cannot_come_from_the_file() {
        let err = serde_json::from_str::<S3Config>(r#"{"credentials": {"a": "b"}}"#);
        assert!(err.is_err());
        let err = serde_json::from_str::<S3Config>(r#"{"secret_access_key": "x"}"#);
        assert!(err.is_err());
    }

    #[test]
    fn a_part_below_the_s3_minimum_is_raised() {
        let config = S3Config {
            part_size_mib: 1,
            ..S3Config::default()
        };
        assert_eq!(config.part_size(), 5 << 20);
    }

    #[test]
    fn debug_output_hides_the_keys() {
        let config = S3Config {
            credentials: Some(S3Credentials {
                access_key_id: SecretString::from("AKIDEXAMPLE"),
                secret_access_key: SecretString::from("very-secret-key"),
            }),
            ..S3Config::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("AKIDEXAMPLE") && !shown.contains("very-secret"),
            "{shown}"
        );
    }
}
