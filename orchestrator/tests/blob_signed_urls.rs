#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The local blob store's signed URLs: shape, verification, tampering, expiry, config.

#[path = "support/blob.rs"]
mod support;

use std::time::Duration;

use orchestrator::BlobStore;
use orchestrator::blob::{
    LocalBlobConfigError, LocalBlobStore, SignatureError, generate_signing_key,
};
use secrecy::SecretSlice;
use support::{BASE, key_bytes, now, parts, store};
use url::Url;

#[tokio::test]
async fn signed_get_url_has_the_documented_shape_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let before = now();
    let url = blobs
        .signed_get_url("tasks/1/workspace.tar.gz", Duration::from_secs(600))
        .await
        .unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:8080/blobs/tasks/1/workspace.tar.gz?method=GET&expires=")
    );
    let (path, method, expires, sig) = parts(&url);
    assert_eq!(path, "/blobs/tasks/1/workspace.tar.gz");
    assert_eq!(method, "GET");
    assert!((before + 600..=now() + 600).contains(&expires), "{expires}");
    assert_eq!(sig.len(), 64);
    assert!(
        sig.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(
        blobs.verify("GET", "tasks/1/workspace.tar.gz", expires, &sig, now()),
        Ok(())
    );
}

#[tokio::test]
async fn signed_put_url_allows_put_only() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let key = "tasks/1/outputs/result.json";
    let (_, method, expires, sig) = parts(
        &blobs
            .signed_put_url(key, Duration::from_secs(60))
            .await
            .unwrap(),
    );
    assert_eq!(method, "PUT");
    assert_eq!(blobs.verify("PUT", key, expires, &sig, now()), Ok(()));
    assert_eq!(
        blobs.verify("GET", key, expires, &sig, now()),
        Err(SignatureError::Invalid)
    );
}

#[tokio::test]
async fn tampered_signed_urls_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let key = "tasks/1/workspace.tar.gz";
    let (_, _, expires, sig) = parts(
        &blobs
            .signed_get_url(key, Duration::from_secs(60))
            .await
            .unwrap(),
    );
    let t = now();
    let mut flipped = sig.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let cases: [(&str, &str, i64, &str); 9] = [
        ("PUT", key, expires, &sig),
        ("get", key, expires, &sig),
        ("GET", "tasks/2/workspace.tar.gz", expires, &sig),
        ("GET", "tasks/1/input.zip", expires, &sig),
        ("GET", key, expires + 3600, &sig),
        ("GET", key, expires - 1, &sig),
        ("GET", key, expires, &flipped),
        ("GET", key, expires, &sig[..62]),
        ("GET", key, expires, "not hex at all"),
    ];
    for (method, k, exp, s) in cases {
        assert_eq!(
            blobs.verify(method, k, exp, s, t),
            Err(SignatureError::Invalid),
            "{method} {k} {exp} {s}"
        );
    }
    assert_eq!(
        blobs.verify("GET", key, expires, "", t),
        Err(SignatureError::Invalid)
    );
}

#[tokio::test]
async fn a_url_signed_with_another_key_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let ours = store(dir.path());
    let theirs = LocalBlobStore::new(dir.path(), BASE, key_bytes(8)).unwrap();
    let key = "tasks/1/workspace.tar.gz";
    let (_, _, expires, sig) = parts(
        &theirs
            .signed_get_url(key, Duration::from_secs(60))
            .await
            .unwrap(),
    );
    assert_eq!(
        ours.verify("GET", key, expires, &sig, now()),
        Err(SignatureError::Invalid)
    );
}

#[tokio::test]
async fn signed_urls_expire_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let key = "tasks/1/workspace.tar.gz";
    let (_, _, expires, sig) = parts(
        &blobs
            .signed_get_url(key, Duration::from_secs(30))
            .await
            .unwrap(),
    );
    assert_eq!(blobs.verify("GET", key, expires, &sig, expires), Ok(()));
    assert_eq!(
        blobs.verify("GET", key, expires, &sig, expires + 1),
        Err(SignatureError::Expired)
    );
}

#[tokio::test]
async fn a_sub_second_ttl_is_not_already_expired() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(dir.path());
    let before = now();
    let (_, _, expires, _) = parts(
        &blobs
            .signed_get_url("k", Duration::from_millis(1))
            .await
            .unwrap(),
    );
    assert!(expires > before, "{expires} > {before}");
}

#[tokio::test]
async fn keys_are_percent_encoded_in_urls_and_base_paths_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let blobs =
        LocalBlobStore::new(dir.path(), "https://example.test/prefix/", key_bytes(1)).unwrap();
    let key = "odd names/a#b?c%d.txt";
    let url = blobs
        .signed_get_url(key, Duration::from_secs(5))
        .await
        .unwrap();
    let parsed = Url::parse(&url).unwrap();
    let segments: Vec<String> = parsed
        .path_segments()
        .unwrap()
        .map(|s| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        })
        .collect();
    assert_eq!(segments, ["prefix", "blobs", "odd names", "a#b?c%d.txt"]);
    let (_, _, expires, sig) = parts(&url);
    assert_eq!(blobs.verify("GET", key, expires, &sig, now()), Ok(()));
}

#[test]
fn bad_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for base in ["not a url", "ftp://host/", "http://host/?q=1", "mailto:x@y"] {
        assert!(
            matches!(
                LocalBlobStore::new(dir.path(), base, key_bytes(1)),
                Err(LocalBlobConfigError::BadBaseUrl { .. })
            ),
            "{base}"
        );
    }
    assert!(matches!(
        LocalBlobStore::new(dir.path(), BASE, SecretSlice::from(vec![1u8; 31])),
        Err(LocalBlobConfigError::SigningKeyTooShort)
    ));
}

#[test]
fn debug_output_does_not_show_the_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalBlobStore::new(dir.path(), BASE, key_bytes(b'Z')).unwrap();
    let shown = format!("{blobs:?}");
    assert!(
        !shown.contains("ZZZZ") && !shown.contains("90, 90"),
        "{shown}"
    );
}

#[tokio::test]
async fn generated_signing_keys_work_and_differ() {
    let dir = tempfile::tempdir().unwrap();
    let a = LocalBlobStore::new(dir.path(), BASE, generate_signing_key().unwrap()).unwrap();
    let b = LocalBlobStore::new(dir.path(), BASE, generate_signing_key().unwrap()).unwrap();
    let (_, _, expires, sig) = parts(&a.signed_get_url("k", Duration::from_secs(9)).await.unwrap());
    assert_eq!(a.verify("GET", "k", expires, &sig, now()), Ok(()));
    assert_eq!(
        b.verify("GET", "k", expires, &sig, now()),
        Err(SignatureError::Invalid)
    );
}
