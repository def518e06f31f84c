//! Uploads: one `PutObject` for a body that fits in a part, a multipart upload for a
//! larger one, holding one part in memory at a time.
//!
//! A multipart upload is invisible until completed. Whatever stops it before then (the
//! body breaks or passes its cap, the store fails, the future is dropped) aborts it, so
//! the store keeps no parts and the previous blob under the key stays.

use aws_sdk_s3::primitives::ByteStream as SdkBody;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::S3BlobStore;
use crate::blob::{BlobError, ByteStream};

/// An upload begun and not yet completed; aborted when dropped that way.
struct Multipart {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
    finished: bool,
}

impl Multipart {
    async fn abort(mut self) {
        self.finished = true;
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(err) = aborted {
            tracing::warn!(key = %self.key, error = %aws_sdk_s3::error::DisplayErrorContext(&err), "aborting a multipart upload failed; the bucket's lifecycle rule removes it");
        }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let aborting = Multipart {
            client: self.client.clone(),
            bucket: std::mem::take(&mut self.bucket),
            key: std::mem::take(&mut self.key),
            upload_id: std::mem::take(&mut self.upload_id),
            parts: Vec::new(),
            finished: false,
        };
        runtime.spawn(aborting.abort());
    }
}

impl S3BlobStore {
    /// One `PutObject`: atomic by itself.
    pub(super) async fn put_whole(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(self.bucket_for(key))
            .key(key)
            .body(SdkBody::from(bytes))
            .send()
            .await
            .map(drop)
            .map_err(|err| self.fail("put", key, err))
    }

    /// Stores `body` (at most `max_bytes`) and returns its size.
    pub(super) async fn upload(
        &self,
        key: &str,
        mut body: ByteStream,
        max_bytes: u64,
    ) -> Result<u64, BlobError> {
        let mut buffer = BytesMut::new();
        let mut total: u64 = 0;
        let mut multipart: Option<Multipart> = None;
        let outcome = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|source| BlobError::Body {
                    key: key.to_string(),
                    source,
                })?;
                total = total.saturating_add(chunk.len() as u64);
                if total > max_bytes {
                    return Err(BlobError::TooLarge {
                        key: key.to_string(),
                        max_bytes,
                    });
                }
                buffer.extend_from_slice(&chunk);
                while buffer.len() >= self.part_size {
                    let part = buffer.split_to(self.part_size).freeze();
                    let upload = match multipart.as_mut() {
                        Some(upload) => upload,
                        None => multipart.insert(self.begin(key).await?),
                    };
                    self.send_part(upload, part).await?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(err) = outcome {
            if let Some(upload) = multipart {
                upload.abort().await;
            }
            return Err(err);
        }
        let Some(mut upload) = multipart else {
            self.put_whole(key, buffer.freeze()).await?;
            return Ok(total);
        };
        let finished = async {
            if !buffer.is_empty() {
                self.send_part(&mut upload, buffer.freeze()).await?;
            }
            self.complete(&mut upload).await
        }
        .await;
        match finished {
            Ok(()) => Ok(total),
            Err(err) => {
                upload.abort().await;
                Err(err)
            }
        }
    }

    async fn begin(&self, key: &str) -> Result<Multipart, BlobError> {
        let bucket = self.bucket_for(key).to_string();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| self.fail("begin multipart upload", key, err))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BlobError::Unavailable {
                context: format!("begin multipart upload `{key}`"),
                source: "the store returned no upload id".into(),
            })?
            .to_string();
        Ok(Multipart {
            client: self.client.clone(),
            bucket,
            key: key.to_string(),
            upload_id,
            parts: Vec::new(),
            finished: false,
        })
    }

    async fn send_part(&self, upload: &mut Multipart, part: Bytes) -> Result<(), BlobError> {
        let number = i32::try_from(upload.parts.len() + 1).unwrap_or(i32::MAX);
        let sent = self
            .client
            .upload_part()
            .bucket(&upload.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(number)
            .body(SdkBody::from(part))
            .send()
            .await
            .map_err(|err| self.fail("upload part", &upload.key, err))?;
        upload.parts.push(
            CompletedPart::builder()
                .set_e_tag(sent.e_tag().map(String::from))
                .part_number(number)
                .build(),
        );
        Ok(())
    }

    async fn complete(&self, upload: &mut Multipart) -> Result<(), BlobError> {
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(upload.parts.clone()))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&upload.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|err| self.fail("complete multipart upload", &upload.key, err))?;
        upload.finished = true;
        Ok(())
    }

    /// A download that broke off midway: the connection, so worth retrying.
    pub(super) fn body_failed(
        &self,
        key: &str,
        err: aws_sdk_s3::primitives::ByteStreamError,
    ) -> BlobError {
        BlobError::Unavailable {
            context: format!("read `{key}`"),
            source: Box::new(err),
        }
    }
}
