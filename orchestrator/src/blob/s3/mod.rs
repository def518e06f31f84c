//! The cluster profile's blob store: S3 or any S3-compatible store (Tencent COS, MinIO,
//! s3s-fs) through `aws-sdk-s3`.
//!
//! - **Whole or nothing.** A single `PutObject` is atomic; a larger body goes up as a
//!   multipart upload, which is invisible until completed and is aborted on any failure
//!   (or, when the writing future is dropped, by a task spawned from its guard), so a
//!   reader never sees half a blob and the previous blob stays until the new one is whole.
//! - **Bounded memory.** `put_stream` and `put_file` hold one part (`part_size_mib`) at a
//!   time; `get_bytes` refuses a blob past its cap from its length, before reading.
//! - **Two buckets.** A key whose third segment is `outputs` (`tasks/{id}/outputs/...`:
//!   what a run produced) lives in the logs bucket, everything else (uploads, workspace
//!   tarballs) in the code bucket; `delete_prefix` clears both.
//! - **Checksums only when required.** Since aws-sdk-s3 1.69 the SDK adds CRC checksums
//!   to every upload by default, which COS, MinIO and others reject; both directions are
//!   set to `WhenRequired`.
//! - **Presigned URLs** (SigV4, at most 7 days) are what the agent gets: it never holds a
//!   key.

mod config;
mod errors;
mod upload;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_smithy_http_client::tls;
use futures_util::{StreamExt, TryStreamExt, stream};
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;

use super::{BlobError, BlobStore, ByteStream, check_signed_url_ttl, validate_key};
pub use config::{Addressing, S3Config, S3ConfigError, S3Credentials};

/// Deletes in flight at once when a prefix is cleared.
const DELETE_CONCURRENCY: usize = 8;

/// A [`BlobStore`] on S3 / COS. Cheap to clone (the SDK client is shared).
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    code_bucket: String,
    logs_bucket: String,
    part_size: usize,
    read_timeout: Duration,
}

impl S3BlobStore {
    /// Builds the client from `config`, and checks (or, with `create_buckets`, creates)
    /// both buckets, so a wrong endpoint, key or bucket name shows at startup.
    pub async fn connect(config: &S3Config) -> Result<Self, S3ConfigError> {
        let store = Self::new(config)?;
        let mut buckets = vec![store.code_bucket.clone()];
        if store.logs_bucket != store.code_bucket {
            buckets.push(store.logs_bucket.clone());
        }
        for bucket in buckets {
            store
                .ensure_bucket(&bucket, config.create_buckets)
                .await
                .map_err(|source| S3ConfigError::Bucket { bucket, source })?;
        }
        Ok(store)
    }

    /// Builds the client without talking to the store.
    pub fn new(config: &S3Config) -> Result<Self, S3ConfigError> {
        let credentials = config
            .credentials
            .as_ref()
            .ok_or(S3ConfigError::NoCredentials)?;
        for (which, bucket) in [("code", &config.code_bucket), ("logs", &config.logs_bucket)] {
            if bucket.is_empty() {
                return Err(S3ConfigError::NoBucket { which });
            }
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(config.region.clone()))
            .credentials_provider(Credentials::new(
                credentials.access_key_id.expose_secret(),
                credentials.secret_access_key.expose_secret(),
                None,
                None,
                "orchestrator-config",
            ))
            .force_path_style(config.addressing == Addressing::Path)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout())
                    .read_timeout(config.read_timeout())
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts.max(1)));
        if let Some(endpoint) = &config.endpoint {
            let parsed = url::Url::parse(endpoint).ok();
            if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(S3ConfigError::BadEndpoint {
                    endpoint: endpoint.clone(),
                });
            }
            builder = builder.endpoint_url(endpoint);
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            code_bucket: config.code_bucket.clone(),
            logs_bucket: config.logs_bucket.clone(),
            part_size: config.part_size(),
            read_timeout: config.read_timeout(),
        })
    }

    /// The SDK client, for what the trait does not cover (tests, operations tools).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket a key lives in (see the module docs).
    pub fn bucket_for(&self, key: &str) -> &str {
        if key.split('/').nth(2) == Some("outputs") {
            &self.logs_bucket
        } else {
            &self.code_bucket
        }
    }

    fn buckets(&self) -> Vec<&str> {
        if self.logs_bucket == self.code_bucket {
            vec![&self.code_bucket]
        } else {
            vec![&self.code_bucket, &self.logs_bucket]
        }
    }

    async fn ensure_bucket(&self, bucket: &str, create: bool) -> Result<(), BlobError> {
        let head = self.client.head_bucket().bucket(bucket).send().await;
        match head {
            Ok(_) => Ok(()),
            Err(err) => match self.fail("check bucket", bucket, err) {
                BlobError::NotFound(_) if create => {
                    tracing::info!(bucket, "creating a missing bucket");
                    let created = self.client.create_bucket().bucket(bucket).send().await;
                    match created {
                        Ok(_) => Ok(()),
                        // Another process (a second replica starting at the same time)
                        // may have created it between the check and the create: the
                        // bucket is usable if it answers now.
                        Err(err) => match self.client.head_bucket().bucket(bucket).send().await {
                            Ok(_) => Ok(()),
                            Err(_) => Err(self.fail("create bucket", bucket, err)),
                        },
                    }
                }
                other => Err(other),
            },
        }
    }

    fn fail<E>(
        &self,
        doing: &str,
        key: &str,
        err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> BlobError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        errors::classify(&format!("{doing} `{key}`"), key, err, self.read_timeout)
    }

    async fn get(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, BlobError> {
        validate_key(key)?;
        let got = self
            .client
            .get_object()
            .bucket(self.bucket_for(key))
            .key(key)
            .send()
            .await;
        match got {
            Ok(object) => Ok(object),
            Err(err) => Err(self
                .not_found_if_folder(key, self.fail("get", key, err))
                .await),
        }
    }

    /// Stores kept on a file system (s3s-fs) answer 5xx for a key that is also a
    /// "folder" (other keys start with `{key}/`); S3 has no such object, so it is not
    /// found. Checked by listing, and only after such an error.
    async fn not_found_if_folder(&self, key: &str, err: BlobError) -> BlobError {
        if !matches!(err, BlobError::Unavailable { .. }) {
            return err;
        }
        let listed = self
            .client
            .list_objects_v2()
            .bucket(self.bucket_for(key))
            .prefix(format!("{key}/"))
            .max_keys(1)
            .send()
            .await;
        match listed {
            Ok(page) if !page.contents().is_empty() => BlobError::NotFound(key.to_string()),
            _ => err,
        }
    }

    /// Every key under `prefix/` in `bucket`, page by page.
    async fn list_under(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, BlobError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|err| self.fail("list", prefix, err))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            token = page.next_continuation_token().map(String::from);
            if token.is_none() || page.is_truncated() != Some(true) {
                return Ok(keys);
            }
        }
    }

    async fn presign(&self, key: &str, ttl: Duration, put: bool) -> Result<String, BlobError> {
        validate_key(key)?;
        check_signed_url_ttl(ttl)?;
        let presigning = PresigningConfig::expires_in(ttl).map_err(|err| BlobError::Rejected {
            context: format!("presign `{key}`"),
            source: Box::new(err),
        })?;
        let bucket = self.bucket_for(key);
        let request = if put {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .presigned(presigning)
                .await
                .map_err(|err| self.fail("presign put", key, err))?
        } else {
            self.client
                .get_object()
                .bucket(bucket)
                .key(key)
                .presigned(presigning)
                .await
                .map_err(|err| self.fail("presign get", key, err))?
        };
        Ok(request.uri().to_string())
    }

    /// Whether `key` is an object in `bucket` (any failure to tell counts as no).
    async fn is_object(&self, bucket: &str, key: &str) -> bool {
        self.client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    /// Deletes `(bucket, key)` pairs, several at once; a key already gone is fine.
    async fn delete_all(&self, targets: Vec<(String, String)>) -> Result<(), BlobError> {
        // Plain deletes rather than DeleteObjects: that call needs a Content-MD5 some
        // S3-compatible stores insist on and the SDK no longer sends.
        stream::iter(targets)
            .map(|(bucket, key)| async move {
                self.client
                    .delete_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .map(drop)
                    .or_else(|err| match self.fail("delete", &key, err) {
                        BlobError::NotFound(_) => Ok(()),
                        other => Err(other),
                    })
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }
}

fn io_error(key: &str, source: std::io::Error) -> BlobError {
    BlobError::Io {
        key: key.to_string(),
        source,
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        validate_key(key)?;
        self.put_whole(key, bytes.into()).await
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        validate_key(key)?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| io_error(key, e))?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
            .map_err(|e| -> super::BoxError { Box::new(e) })
            .boxed();
        match self.upload(key, body, u64::MAX).await {
            // A file that fails to read is the file's problem, not a broken client body.
            Err(BlobError::Body { key, source }) => match source.downcast::<std::io::Error>() {
                Ok(io) => Err(BlobError::Io { key, source: *io }),
                Err(source) => Err(BlobError::Body { key, source }),
            },
            other => other.map(drop),
        }
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        max_bytes: u64,
    ) -> Result<u64, BlobError> {
        validate_key(key)?;
        self.upload(key, body, max_bytes).await
    }

    async fn get_bytes(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError> {
        let too_large = || BlobError::TooLarge {
            key: key.to_string(),
            max_bytes,
        };
        let object = self.get(key).await?;
        let length = object.content_length().and_then(|l| u64::try_from(l).ok());
        if length.is_some_and(|l| l > max_bytes) {
            return Err(too_large());
        }
        let capacity = length.unwrap_or(0).min(max_bytes).min(64 << 20);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        let mut body = object.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|err| self.body_failed(key, err))?
        {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    async fn get_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let object = self.get(key).await?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        // Written beside the target and renamed over it: no half file on failure.
        let temp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| io_error(key, e))?;
        let mut file = tokio::fs::File::from_std(temp.reopen().map_err(|e| io_error(key, e))?);
        let mut body = object.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|err| self.body_failed(key, err))?
        {
            file.write_all(&chunk).await.map_err(|e| io_error(key, e))?;
        }
        file.flush().await.map_err(|e| io_error(key, e))?;
        drop(file);
        temp.persist(path).map_err(|e| io_error(key, e.error))?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        validate_key(key)?;
        let head = self
            .client
            .head_object()
            .bucket(self.bucket_for(key))
            .key(key)
            .send()
            .await;
        let err = match head {
            Ok(_) => return Ok(true),
            Err(err) => self.fail("head", key, err),
        };
        match self.not_found_if_folder(key, err).await {
            BlobError::NotFound(_) => Ok(false),
            other => Err(other),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError> {
        let trimmed = prefix.trim_end_matches('/');
        validate_key(trimmed).map_err(|_| BlobError::InvalidKey(prefix.to_string()))?;
        let under = format!("{trimmed}/");
        let mut targets = Vec::new();
        let mut bare = Vec::new();
        for bucket in self.buckets() {
            let under_it = self.list_under(bucket, &under).await?;
            // The bare prefix as a key of its own. Where keys lie under it, stores kept
            // on a file system hold it as their folder (and answer 500 for it): only a
            // real object there is deleted.
            if under_it.is_empty() || self.is_object(bucket, trimmed).await {
                bare.push((bucket.to_string(), trimmed.to_string()));
            }
            targets.extend(under_it.into_iter().map(|key| (bucket.to_string(), key)));
        }
        self.delete_all(targets).await?;
        self.delete_all(bare).await
    }

    async fn signed_get_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        self.presign(key, ttl, false).await
    }

    async fn signed_put_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        self.presign(key, ttl, true).await
    }
}
