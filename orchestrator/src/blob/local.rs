//! The embedded profile's blob store: one file per key under a root folder.
//!
//! Writes go to a temporary file beside the target and are renamed over it, so a reader
//! (or a crash) never sees half a blob and concurrent writers to one key leave one whole
//! file. Signed URLs point at the API's blob route (`{public_base_url}/blobs/{key}`),
//! which calls [`LocalBlobStore::verify`] and then [`LocalBlobStore::open_read`] or
//! [`BlobStore::put_stream`]: the agent reaches blobs only through those URLs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::StreamExt;
use secrecy::SecretSlice;
use tempfile::NamedTempFile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use super::signing::{MIN_SIGNING_KEY_LEN, SignatureError, SignedMethod, UrlSigner};
use super::{BlobError, BlobStore, ByteStream, check_signed_url_ttl, validate_key};

/// A local blob store that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum LocalBlobConfigError {
    #[error(
        "public base URL `{url}` is not usable for signed blob URLs: {reason} (expected e.g. `http://127.0.0.1:8080`)"
    )]
    BadBaseUrl { url: String, reason: String },
    #[error("the blob signing key must be at least {MIN_SIGNING_KEY_LEN} bytes")]
    SigningKeyTooShort,
}

#[derive(Debug)]
pub struct LocalBlobStore {
    root: PathBuf,
    base_url: Url,
    signer: UrlSigner,
}

impl LocalBlobStore {
    /// `public_base_url` is where clients reach the API (`http://host:port`, optionally
    /// with a path prefix); the root folder is created on first write.
    pub fn new(
        root: impl Into<PathBuf>,
        public_base_url: &str,
        signing_key: SecretSlice<u8>,
    ) -> Result<Self, LocalBlobConfigError> {
        let bad = |reason: &str| LocalBlobConfigError::BadBaseUrl {
            url: public_base_url.to_string(),
            reason: reason.to_string(),
        };
        let base_url = Url::parse(public_base_url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(bad("only http and https are served"));
        }
        if base_url.cannot_be_a_base()
            || base_url.query().is_some()
            || base_url.fragment().is_some()
        {
            return Err(bad(
                "it must be a plain http(s) URL without query or fragment",
            ));
        }
        let signer =
            UrlSigner::new(&signing_key).ok_or(LocalBlobConfigError::SigningKeyTooShort)?;
        Ok(Self {
            root: root.into(),
            base_url,
            signer,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks a signed request: `method` is the HTTP method actually used, `now` the
    /// current Unix time in seconds (a parameter so callers and tests control the clock).
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        expires: i64,
        sig: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        validate_key(key).map_err(|_| SignatureError::Invalid)?;
        self.signer.verify(method, key, expires, sig, now)
    }

    /// Opens a blob for streaming out; the size is for `Content-Length`.
    pub async fn open_read(&self, key: &str) -> Result<(tokio::fs::File, u64), BlobError> {
        let path = self.path_for(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| read_error(key, e))?;
        let meta = file.metadata().await.map_err(|e| io_error(key, e))?;
        if !meta.is_file() {
            return Err(BlobError::NotFound(key.to_string()));
        }
        Ok((file, meta.len()))
    }

    fn path_for(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn signed_url(
        &self,
        method: SignedMethod,
        key: &str,
        ttl: Duration,
    ) -> Result<String, BlobError> {
        validate_key(key)?;
        check_signed_url_ttl(ttl)?;
        let expires = unix_now().saturating_add(ttl_secs(ttl));
        let sig = self.signer.sign(method, key, expires);
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            // `new` refused base URLs that cannot take a path, so this does not happen.
            .map_err(|()| BlobError::Rejected {
                context: "signing a URL".into(),
                source: "the public base URL cannot take a path".into(),
            })?
            .pop_if_empty()
            .push("blobs")
            .extend(key.split('/'));
        url.query_pairs_mut()
            .append_pair("method", method.as_str())
            .append_pair("expires", &expires.to_string())
            .append_pair("sig", &sig);
        Ok(url.into())
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let dest = self.path_for(key)?;
        let temp = temp_beside(dest.clone(), key).await?;
        let key_owned = key.to_string();
        let temp = tokio::task::spawn_blocking(move || {
            let mut temp = temp;
            temp.write_all(&bytes)?;
            temp.as_file().sync_all()?;
            Ok::<_, std::io::Error>(temp)
        })
        .await
        .map_err(|e| join_error(&key_owned, e))?
        .map_err(|e| io_error(key, e))?;
        persist(temp, dest, key).await
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let dest = self.path_for(key)?;
        let temp = temp_beside(dest.clone(), key).await?;
        let source = path.to_path_buf();
        let temp = tokio::task::spawn_blocking(move || {
            let mut temp = temp;
            let mut src = std::fs::File::open(&source)?;
            std::io::copy(&mut src, &mut temp)?;
            temp.as_file().sync_all()?;
            Ok::<_, std::io::Error>(temp)
        })
        .await
        .map_err(|e| join_error(key, e))?
        .map_err(|e| io_error(key, e))?;
        persist(temp, dest, key).await
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        max_bytes: u64,
    ) -> Result<u64, BlobError> {
        let dest = self.path_for(key)?;
        let temp = temp_beside(dest.clone(), key).await?;
        let std_file = temp.as_file().try_clone().map_err(|e| io_error(key, e))?;
        let mut file = tokio::fs::File::from_std(std_file);
        let mut written: u64 = 0;
        let mut body = body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| BlobError::Body {
                key: key.to_string(),
                source,
            })?;
            written = written.saturating_add(chunk.len() as u64);
            if written > max_bytes {
                return Err(BlobError::TooLarge {
                    key: key.to_string(),
                    max_bytes,
                });
            }
            file.write_all(&chunk).await.map_err(|e| io_error(key, e))?;
        }
        file.flush().await.map_err(|e| io_error(key, e))?;
        file.sync_all().await.map_err(|e| io_error(key, e))?;
        drop(file);
        persist(temp, dest, key).await?;
        Ok(written)
    }

    async fn get_bytes(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError> {
        let (file, len) = self.open_read(key).await?;
        let too_large = || BlobError::TooLarge {
            key: key.to_string(),
            max_bytes,
        };
        if len > max_bytes {
            return Err(too_large());
        }
        // The file may grow after the size check: read one byte past the cap at most.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| io_error(key, e))?;
        if bytes.len() as u64 > max_bytes {
            return Err(too_large());
        }
        Ok(bytes)
    }

    async fn get_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let source = self.path_for(key)?;
        // A missing blob must say NotFound, not blame the destination.
        if !self.exists(key).await? {
            return Err(BlobError::NotFound(key.to_string()));
        }
        tokio::fs::copy(&source, path)
            .await
            .map(drop)
            .map_err(|e| read_error(key, e))
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        let path = self.path_for(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(io_error(key, e)),
        }
    }

    /// (A string-prefix store such as S3 gets the trait's "prefixes end at a `/`" from
    /// deleting `tasks/1` and everything under `tasks/1/`.)
    async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError> {
        let trimmed = prefix.trim_end_matches('/');
        let path = self.path_for(trimmed)?;
        let meta = match tokio::fs::symlink_metadata(&path).await {
            Ok(meta) => meta,
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(io_error(prefix, e)),
        };
        let removed = if meta.is_dir() {
            tokio::fs::remove_dir_all(&path).await
        } else {
            tokio::fs::remove_file(&path).await
        };
        match removed {
            Ok(()) => Ok(()),
            Err(e) if is_missing(&e) => Ok(()),
            Err(e) => Err(io_error(prefix, e)),
        }
    }

    async fn signed_get_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        self.signed_url(SignedMethod::Get, key, ttl)
    }

    async fn signed_put_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        self.signed_url(SignedMethod::Put, key, ttl)
    }
}

/// A temporary file in the target's own folder, so the final rename stays on one file
/// system and is atomic. Dropping it (on any error or cancellation) deletes it.
async fn temp_beside(dest: PathBuf, key: &str) -> Result<NamedTempFile, BlobError> {
    let result = tokio::task::spawn_blocking(move || {
        let parent = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        tempfile::Builder::new()
            .prefix(".upload-")
            .suffix(".part")
            .tempfile_in(parent)
    })
    .await
    .map_err(|e| join_error(key, e))?;
    result.map_err(|e| io_error(key, e))
}

async fn persist(temp: NamedTempFile, dest: PathBuf, key: &str) -> Result<(), BlobError> {
    let result = tokio::task::spawn_blocking(move || temp.persist(&dest).map(drop))
        .await
        .map_err(|e| join_error(key, e))?;
    result.map_err(|e| io_error(key, e.error))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whole seconds, rounded up: a 500 ms TTL must not produce an already-expired URL.
fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// `ENOENT`, or `ENOTDIR` when a path segment of the key is a file.
fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn read_error(key: &str, e: std::io::Error) -> BlobError {
    if is_missing(&e) || e.kind() == std::io::ErrorKind::IsADirectory {
        BlobError::NotFound(key.to_string())
    } else {
        io_error(key, e)
    }
}

fn io_error(key: &str, source: std::io::Error) -> BlobError {
    BlobError::Io {
        key: key.to_string(),
        source,
    }
}

fn join_error(key: &str, e: tokio::task::JoinError) -> BlobError {
    io_error(key, std::io::Error::other(e))
}
