#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The local blob store: the shared blob contract (its signed URLs served over HTTP), and
//! what only a folder shows: files on disk, temporary files, concurrent writers.

mod blob_contract;
#[path = "support/blob_server.rs"]
mod server;
#[path = "support/blob.rs"]
mod support;

use std::sync::Arc;

use blob_contract::{BlobFixture, blob_contract_tests};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use orchestrator::blob::{BoxError, SignatureError};
use orchestrator::{BlobError, BlobStore};
use support::{files_under, now, store};
use tokio::io::AsyncReadExt;

async fn fixture() -> BlobFixture {
    let dir = tempfile::tempdir().unwrap();
    let served = server::served_store(dir.path()).await;
    BlobFixture {
        blobs: served.blobs.clone(),
        _keep: Box::new((served, dir)),
    }
}

mod contract {
    use super::*;
    blob_contract_tests!(fixture);
}

/// `chunks` as a body.
fn body(chunks: Vec<Vec<u8>>) -> orchestrator::ByteStream {
    stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, BoxError>(Bytes::from(c))),
    )
    .boxed()
}

#[tokio::test]
async fn put_file_from_a_missing_source_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir.path().join("blobs"));
    let err = blobs
        .put_file("k", &dir.path().join("missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Io { .. }), "{err:?}");
    assert!(files_under(&dir.path().join("blobs")).is_empty());
}

#[tokio::test]
async fn reading_a_missing_blob_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    blobs.put_bytes("tasks/1/x", b"x".to_vec()).await.unwrap();
    for key in ["nope", "tasks/1", "tasks/1/x/deeper"] {
        assert!(
            matches!(
                blobs.get_bytes(key, 1 << 20).await,
                Err(BlobError::NotFound(_))
            ),
            "{key}"
        );
        assert!(
            matches!(blobs.open_read(key).await, Err(BlobError::NotFound(_))),
            "{key}"
        );
        let out = dir.path().join("out");
        assert!(
            matches!(blobs.get_file(key, &out).await, Err(BlobError::NotFound(_))),
            "{key}"
        );
        assert!(!out.exists());
        assert!(!blobs.exists(key).await.unwrap(), "{key}");
    }
}

#[tokio::test]
async fn exists_follows_puts_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    assert!(!blobs.exists("tasks/1/input.zip").await.unwrap());
    blobs.put_bytes("tasks/1/input.zip", vec![1]).await.unwrap();
    assert!(blobs.exists("tasks/1/input.zip").await.unwrap());
    blobs.delete_prefix("tasks/1/").await.unwrap();
    assert!(!blobs.exists("tasks/1/input.zip").await.unwrap());
}

#[tokio::test]
async fn delete_prefix_removes_the_subtree_but_not_siblings_sharing_a_string_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    for key in [
        "tasks/1/input.zip",
        "tasks/1/outputs/diff.patch",
        "tasks/10/input.zip",
        "tasks/2/input.zip",
    ] {
        blobs.put_bytes(key, key.as_bytes().to_vec()).await.unwrap();
    }
    blobs.delete_prefix("tasks/1").await.unwrap();
    assert_eq!(
        files_under(dir.path()),
        ["tasks/10/input.zip", "tasks/2/input.zip"]
    );
    blobs.delete_prefix("tasks/10/input.zip").await.unwrap();
    assert_eq!(files_under(dir.path()), ["tasks/2/input.zip"]);
}

#[tokio::test]
async fn delete_prefix_of_nothing_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir.path().join("never-created"));
    blobs.delete_prefix("tasks/404/").await.unwrap();
}

#[tokio::test]
async fn invalid_keys_are_refused_by_the_routes_helpers_and_touch_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir.path().join("blobs"));
    let outside = dir.path().join("outside");
    for bad in [
        "",
        "/etc/passwd",
        "../escape",
        "a/../../b",
        "a//b",
        "a\\b",
        "a\nb",
    ] {
        assert!(
            matches!(blobs.open_read(bad).await, Err(BlobError::InvalidKey(_))),
            "{bad:?}"
        );
        assert_eq!(
            blobs.verify("GET", bad, now() + 60, &"0".repeat(64), now()),
            Err(SignatureError::Invalid)
        );
        let _ = blobs.put_bytes(bad, vec![1]).await;
        let _ = blobs.put_file(bad, &outside).await;
        let _ = blobs.put_stream(bad, body(vec![vec![1]]), 10).await;
    }
    for bad in ["", "/", "..", "a/../.."] {
        let _ = blobs.delete_prefix(bad).await;
    }
    assert!(!dir.path().join("blobs").exists());
    assert!(!outside.exists());
}

#[tokio::test]
async fn open_read_gives_the_file_and_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    blobs
        .put_bytes("tasks/1/outputs/agent.log", b"hello log".to_vec())
        .await
        .unwrap();
    let (mut file, size) = blobs.open_read("tasks/1/outputs/agent.log").await.unwrap();
    assert_eq!(size, 9);
    let mut text = String::new();
    file.read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "hello log");
}

#[tokio::test]
async fn put_stream_over_the_cap_leaves_only_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    blobs.put_bytes("t/out", b"old".to_vec()).await.unwrap();
    let chunks = ["12345", "67890", "x"]
        .map(|c| c.as_bytes().to_vec())
        .to_vec();
    let err = blobs
        .put_stream("t/out", body(chunks), 10)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { .. }), "{err:?}");
    assert_eq!(files_under(dir.path()), ["t/out"]);
}

#[tokio::test]
async fn put_stream_with_a_broken_body_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let chunks: Vec<Result<Bytes, BoxError>> = vec![
        Ok(Bytes::from_static(b"partial")),
        Err(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ))),
    ];
    let err = blobs
        .put_stream("t/out", stream::iter(chunks).boxed(), 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Body { .. }), "{err:?}");
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test]
async fn a_cancelled_put_stream_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(store(dir.path()));
    let (first_chunk_consumed, consumed) = tokio::sync::oneshot::channel::<()>();
    // Yields one chunk; when asked for the next one (so the first was written), signals
    // and then never ends, like a client that stalls mid-upload.
    let body = stream::unfold(
        (0, Some(first_chunk_consumed)),
        |(step, mut signal)| async move {
            if step == 0 {
                return Some((Ok::<_, BoxError>(Bytes::from(vec![7u8; 1000])), (1, signal)));
            }
            if let Some(tx) = signal.take() {
                let _ = tx.send(());
            }
            std::future::pending::<()>().await;
            None
        },
    );
    let writer = {
        let blobs = blobs.clone();
        tokio::spawn(async move { blobs.put_stream("t/out", body.boxed(), 1 << 20).await })
    };
    consumed.await.unwrap();
    writer.abort();
    assert!(writer.await.unwrap_err().is_cancelled());
    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_to_one_key_leave_one_whole_blob() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(store(dir.path()));
    const SIZE: usize = 512 * 1024;
    let mut writers = Vec::new();
    for writer in 0..8u8 {
        let blobs = blobs.clone();
        writers.push(tokio::spawn(async move {
            if writer % 2 == 0 {
                blobs
                    .put_bytes("t/shared", vec![writer; SIZE])
                    .await
                    .unwrap();
            } else {
                let chunks = (0..8).map(|_| vec![writer; SIZE / 8]).collect();
                blobs
                    .put_stream("t/shared", body(chunks), SIZE as u64)
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let bytes = blobs.get_bytes("t/shared", 1 << 30).await.unwrap();
    assert_eq!(bytes.len(), SIZE);
    assert!(
        bytes.iter().all(|b| *b == bytes[0]),
        "bytes from several writers"
    );
    assert_eq!(files_under(dir.path()), ["t/shared"]);
}
