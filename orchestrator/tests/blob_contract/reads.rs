//! Reading, listing by prefix and deleting; keys that could escape are refused.

use std::time::Duration;

use orchestrator::BlobError;

use super::{ANY_SIZE, BlobFixture, body_of, pattern, unique_prefix};

pub async fn get_bytes_over_the_cap_is_too_large_and_at_the_cap_is_whole(fx: BlobFixture) {
    let key = format!("{}/result.json", unique_prefix());
    fx.blobs.put_bytes(&key, pattern(1000)).await.unwrap();
    let err = fx.blobs.get_bytes(&key, 999).await.unwrap_err();
    assert!(
        matches!(err, BlobError::TooLarge { max_bytes: 999, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(fx.blobs.get_bytes(&key, 1000).await.unwrap(), pattern(1000));
}

pub async fn missing_blobs_are_not_found(fx: BlobFixture) {
    let prefix = unique_prefix();
    fx.blobs
        .put_bytes(&format!("{prefix}/x"), b"x".to_vec())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for key in [format!("{prefix}/nope"), prefix.clone()] {
        let err = fx.blobs.get_bytes(&key, ANY_SIZE).await.unwrap_err();
        assert!(matches!(err, BlobError::NotFound(_)), "{key}: {err:?}");
        let out = dir.path().join("out");
        let err = fx.blobs.get_file(&key, &out).await.unwrap_err();
        assert!(matches!(err, BlobError::NotFound(_)), "{key}: {err:?}");
        assert!(!out.exists(), "a failed download left a file");
        assert!(!fx.blobs.exists(&key).await.unwrap(), "{key}");
    }
}

pub async fn delete_prefix_removes_the_subtree_but_not_string_prefix_siblings(fx: BlobFixture) {
    let p = unique_prefix();
    let keys = [
        format!("{p}/tasks/1/input.zip"),
        format!("{p}/tasks/1/outputs/diff.patch"),
        format!("{p}/tasks/10/input.zip"),
        format!("{p}/tasks/2/input.zip"),
    ];
    for key in &keys {
        fx.blobs
            .put_bytes(key, key.as_bytes().to_vec())
            .await
            .unwrap();
    }
    fx.blobs
        .delete_prefix(&format!("{p}/tasks/1"))
        .await
        .unwrap();
    let mut left = Vec::new();
    for key in &keys {
        if fx.blobs.exists(key).await.unwrap() {
            left.push(key.clone());
        }
    }
    assert_eq!(left, [keys[2].clone(), keys[3].clone()]);
    // Nothing there: still fine.
    fx.blobs
        .delete_prefix(&format!("{p}/tasks/404/"))
        .await
        .unwrap();
}

pub async fn invalid_keys_are_refused_by_every_operation(fx: BlobFixture) {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::write(&outside, b"data").unwrap();
    let invalid = |r: Result<(), BlobError>| matches!(r, Err(BlobError::InvalidKey(_)));
    let ttl = Duration::from_secs(60);
    let b = &fx.blobs;
    for bad in [
        "",
        "/etc/passwd",
        "../escape",
        "a/../../b",
        "a//b",
        "a\\b",
        "a\nb",
    ] {
        assert!(invalid(b.put_bytes(bad, vec![1]).await), "{bad:?}");
        assert!(invalid(b.put_file(bad, &outside).await), "{bad:?}");
        let streamed = b.put_stream(bad, body_of(&pattern(10), 5), 100).await;
        assert!(invalid(streamed.map(drop)), "{bad:?}");
        assert!(
            invalid(b.get_bytes(bad, ANY_SIZE).await.map(drop)),
            "{bad:?}"
        );
        assert!(
            invalid(b.get_file(bad, &dir.path().join("o")).await),
            "{bad:?}"
        );
        assert!(invalid(b.exists(bad).await.map(drop)), "{bad:?}");
        assert!(
            invalid(b.signed_get_url(bad, ttl).await.map(drop)),
            "{bad:?}"
        );
        assert!(
            invalid(b.signed_put_url(bad, ttl).await.map(drop)),
            "{bad:?}"
        );
    }
    // `delete_prefix("")` would be everything: refused, like `/` and `..`.
    for bad in ["", "/", "..", "a/../.."] {
        assert!(invalid(b.delete_prefix(bad).await), "{bad:?}");
    }
}
