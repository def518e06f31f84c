//! Writing blobs: whole or not at all, from bytes, files and streams.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use orchestrator::BlobError;
use orchestrator::blob::BoxError;

use super::{ANY_SIZE, BlobFixture, body_of, pattern, unique_prefix};

pub async fn put_bytes_then_get_bytes_round_trips(fx: BlobFixture) {
    let key = format!("{}/outputs/diff.patch", unique_prefix());
    fx.blobs.put_bytes(&key, b"diff".to_vec()).await.unwrap();
    assert_eq!(fx.blobs.get_bytes(&key, ANY_SIZE).await.unwrap(), b"diff");
    assert!(fx.blobs.exists(&key).await.unwrap());
}

pub async fn a_put_replaces_the_previous_blob(fx: BlobFixture) {
    let key = format!("{}/a", unique_prefix());
    fx.blobs
        .put_bytes(&key, b"first, longer".to_vec())
        .await
        .unwrap();
    fx.blobs.put_bytes(&key, b"second".to_vec()).await.unwrap();
    assert_eq!(fx.blobs.get_bytes(&key, ANY_SIZE).await.unwrap(), b"second");
}

pub async fn put_file_then_get_file_round_trips(fx: BlobFixture) {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("{}/workspace.tar.gz", unique_prefix());
    let src = dir.path().join("src.bin");
    let payload = pattern(300_000);
    std::fs::write(&src, &payload).unwrap();
    fx.blobs.put_file(&key, &src).await.unwrap();
    let back = dir.path().join("back.bin");
    fx.blobs.get_file(&key, &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), payload);
}

/// Larger than an S3 multipart part (5 MiB), in chunks that do not line up with one.
pub async fn put_stream_stores_a_body_of_many_chunks_and_returns_its_size(fx: BlobFixture) {
    let key = format!("{}/input.zip", unique_prefix());
    let payload = pattern(12 * 1024 * 1024 + 123);
    let size = fx
        .blobs
        .put_stream(&key, body_of(&payload, 64 * 1024 + 7), payload.len() as u64)
        .await
        .unwrap();
    assert_eq!(size, payload.len() as u64);
    let back = fx.blobs.get_bytes(&key, ANY_SIZE).await.unwrap();
    assert!(back == payload, "the stored bytes differ");
}

pub async fn put_stream_over_the_cap_stores_nothing_and_keeps_the_old_blob(fx: BlobFixture) {
    let prefix = unique_prefix();
    let (old, fresh) = (format!("{prefix}/old"), format!("{prefix}/fresh"));
    fx.blobs.put_bytes(&old, b"old".to_vec()).await.unwrap();
    for key in [&old, &fresh] {
        let err = fx
            .blobs
            .put_stream(key, body_of(b"12345678901", 5), 10)
            .await
            .unwrap_err();
        assert!(
            matches!(err, BlobError::TooLarge { max_bytes: 10, .. }),
            "{err:?}"
        );
    }
    assert_eq!(fx.blobs.get_bytes(&old, ANY_SIZE).await.unwrap(), b"old");
    assert!(!fx.blobs.exists(&fresh).await.unwrap());
}

pub async fn put_stream_with_a_broken_body_stores_nothing(fx: BlobFixture) {
    let key = format!("{}/out", unique_prefix());
    let broken: Vec<Result<Bytes, BoxError>> = vec![
        Ok(Bytes::from_static(b"partial")),
        Err(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the client went away",
        ))),
    ];
    let err = fx
        .blobs
        .put_stream(&key, stream::iter(broken).boxed(), 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Body { .. }), "{err:?}");
    assert!(
        !err.is_transient(),
        "the uploader's failure is not the store's"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
    assert!(!fx.blobs.exists(&key).await.unwrap());
}
