#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The local blob store: storage semantics and the streaming helpers of the blob route.

#[path = "support/blob.rs"]
mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use orchestrator::blob::{SignatureError, StreamWriteError};
use orchestrator::{BlobError, BlobStore};
use support::{files_under, now, store};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn put_bytes_then_get_bytes_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    blobs
        .put_bytes("tasks/1/outputs/diff.patch", b"diff".to_vec())
        .await
        .unwrap();
    assert_eq!(
        blobs.get_bytes("tasks/1/outputs/diff.patch").await.unwrap(),
        b"diff"
    );
    assert_eq!(files_under(dir.path()), ["tasks/1/outputs/diff.patch"]);
}

#[tokio::test]
async fn put_replaces_an_existing_blob() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    blobs
        .put_bytes("a", b"first, longer".to_vec())
        .await
        .unwrap();
    blobs.put_bytes("a", b"second".to_vec()).await.unwrap();
    assert_eq!(blobs.get_bytes("a").await.unwrap(), b"second");
}

#[tokio::test]
async fn put_file_then_get_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir.path().join("blobs"));
    let src = dir.path().join("src.bin");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &payload).unwrap();
    blobs
        .put_file("tasks/2/workspace.tar.gz", &src)
        .await
        .unwrap();
    let back = dir.path().join("back.bin");
    blobs
        .get_file("tasks/2/workspace.tar.gz", &back)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), payload);
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
            matches!(blobs.get_bytes(key).await, Err(BlobError::NotFound(_))),
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
async fn invalid_keys_are_refused_by_every_operation() {
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
        let invalid = |r: Result<(), BlobError>| matches!(r, Err(BlobError::InvalidKey(_)));
        assert!(invalid(blobs.put_bytes(bad, vec![1]).await), "{bad:?}");
        assert!(invalid(blobs.put_file(bad, &outside).await), "{bad:?}");
        assert!(invalid(blobs.get_bytes(bad).await.map(drop)), "{bad:?}");
        assert!(invalid(blobs.get_file(bad, &outside).await), "{bad:?}");
        assert!(invalid(blobs.exists(bad).await.map(drop)), "{bad:?}");
        assert!(invalid(blobs.open_read(bad).await.map(drop)), "{bad:?}");
        assert!(
            invalid(
                blobs
                    .signed_get_url(bad, Duration::from_secs(60))
                    .await
                    .map(drop)
            ),
            "{bad:?}"
        );
        assert!(
            invalid(
                blobs
                    .signed_put_url(bad, Duration::from_secs(60))
                    .await
                    .map(drop)
            ),
            "{bad:?}"
        );
        let written = blobs
            .write_stream(bad, stream::iter([Ok::<_, Infallible>(vec![1u8])]), 10)
            .await;
        assert!(
            matches!(
                written,
                Err(StreamWriteError::Blob(BlobError::InvalidKey(_)))
            ),
            "{bad:?}"
        );
        assert_eq!(
            blobs.verify("GET", bad, now() + 60, &"0".repeat(64), now()),
            Err(SignatureError::Invalid)
        );
    }
    // `delete_prefix("")` would be everything: refused, like `/` and `..`.
    for bad in ["", "/", "..", "a/../.."] {
        assert!(
            matches!(
                blobs.delete_prefix(bad).await,
                Err(BlobError::InvalidKey(_))
            ),
            "{bad:?}"
        );
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
async fn write_stream_stores_the_body_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let chunks = ["one ", "two ", "three"].map(|c| Ok::<_, Infallible>(c.as_bytes()));
    let n = blobs
        .write_stream("tasks/1/outputs/diff.patch", stream::iter(chunks), 13)
        .await
        .unwrap();
    assert_eq!(n, 13);
    assert_eq!(
        blobs.get_bytes("tasks/1/outputs/diff.patch").await.unwrap(),
        b"one two three"
    );
}

#[tokio::test]
async fn write_stream_over_the_cap_stores_nothing_and_keeps_the_old_blob() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    blobs.put_bytes("t/out", b"old".to_vec()).await.unwrap();
    let chunks = ["12345", "67890", "x"].map(|c| Ok::<_, Infallible>(c.as_bytes()));
    let err = blobs
        .write_stream("t/out", stream::iter(chunks), 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StreamWriteError::TooLarge { max_bytes: 10, .. }),
        "{err:?}"
    );
    assert_eq!(blobs.get_bytes("t/out").await.unwrap(), b"old");
    assert_eq!(files_under(dir.path()), ["t/out"]);
}

#[tokio::test]
async fn write_stream_with_a_broken_body_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let chunks: Vec<Result<&[u8], std::io::Error>> = vec![
        Ok(b"partial"),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )),
    ];
    let err = blobs
        .write_stream("t/out", stream::iter(chunks), 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, StreamWriteError::Body { .. }), "{err:?}");
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test]
async fn a_cancelled_write_stream_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(store(dir.path()));
    let (first_chunk_consumed, consumed) = tokio::sync::oneshot::channel::<()>();
    // Yields one chunk; when asked for the next one (so the first was written), signals
    // and then never ends, like a client that stalls mid-upload.
    let body = stream::unfold(
        (0, Some(first_chunk_consumed)),
        |(step, mut signal)| async move {
            if step == 0 {
                return Some((Ok::<_, Infallible>(vec![7u8; 1000]), (1, signal)));
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
        tokio::spawn(async move { blobs.write_stream("t/out", body, 1 << 20).await })
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
                let chunks = (0..8).map(move |_| Ok::<_, Infallible>(vec![writer; SIZE / 8]));
                blobs
                    .write_stream("t/shared", stream::iter(chunks), SIZE as u64)
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let bytes = blobs.get_bytes("t/shared").await.unwrap();
    assert_eq!(bytes.len(), SIZE);
    assert!(
        bytes.iter().all(|b| *b == bytes[0]),
        "bytes from several writers"
    );
    assert_eq!(files_under(dir.path()), ["t/shared"]);
}
