//! Artifacts redirect to signed blob URLs; the blob route checks method, key, expiry and
//! signature before it streams a byte either way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use orchestrator::BlobStore;
use support::{ALICE, Harness, expect_error, test_config};

#[tokio::test]
async fn artifact_redirects_to_a_signed_url_serving_its_bytes() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let key = format!("tasks/{id}/outputs/diff.patch");
    h.blobs
        .put_bytes(&key, b"--- a\n+++ b\n".to_vec())
        .await
        .unwrap();

    let response = h
        .http
        .get(h.url(&format!("/api/v1/tasks/{id}/artifacts/diff.patch")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&h.url("/blobs/")), "{location}");
    // The signed URL is the credential: no bearer token.
    let blob = h.http.get(&location).send().await.unwrap();
    assert_eq!(blob.status(), 200);
    assert_eq!(blob.bytes().await.unwrap().as_ref(), b"--- a\n+++ b\n");
}

#[tokio::test]
async fn unknown_and_missing_artifacts_are_404() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    for name in ["prompt.txt", "..%2Fsecret", "result.json"] {
        let response = h
            .http
            .get(h.url(&format!("/api/v1/tasks/{id}/artifacts/{name}")))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        expect_error(response, 404).await;
    }
}

async fn signed(h: &Harness, put: bool, key: &str) -> String {
    let ttl = Duration::from_secs(60);
    if put {
        h.blobs.signed_put_url(key, ttl).await.unwrap()
    } else {
        h.blobs.signed_get_url(key, ttl).await.unwrap()
    }
}

#[tokio::test]
async fn signed_put_stores_the_body_and_signed_get_reads_it_back() {
    let h = Harness::start().await;
    let key = "tasks/t1/outputs/agent.log";
    let put = h
        .http
        .put(signed(&h, true, key).await)
        .body("log line\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(
        h.blobs.get_bytes(key, 1 << 20).await.unwrap(),
        b"log line\n"
    );
    let get = h
        .http
        .get(signed(&h, false, key).await)
        .send()
        .await
        .unwrap();
    assert_eq!(get.bytes().await.unwrap().as_ref(), b"log line\n");
}

#[tokio::test]
async fn tampered_signatures_keys_and_methods_are_403() {
    let h = Harness::start().await;
    let key = "tasks/t1/outputs/diff.patch";
    h.blobs.put_bytes(key, b"x".to_vec()).await.unwrap();
    let get_url = signed(&h, false, key).await;
    let put_url = signed(&h, true, key).await;

    let flipped_sig = {
        let (head, sig) = get_url.rsplit_once("sig=").unwrap();
        let first = if sig.starts_with('0') { '1' } else { '0' };
        format!("{head}sig={first}{}", &sig[1..])
    };
    let other_key = get_url.replace("diff.patch", "agent.log");
    let later_expiry = {
        let (head, rest) = get_url.split_once("expires=").unwrap();
        let (expires, tail) = rest.split_once('&').unwrap();
        let later: i64 = expires.parse::<i64>().unwrap() + 3600;
        format!("{head}expires={later}&{tail}")
    };
    let unsigned = h.url(&format!("/blobs/{key}"));
    for url in [flipped_sig, other_key, later_expiry, unsigned] {
        let response = h.http.get(&url).send().await.unwrap();
        let (code, _) = expect_error(response, 403).await;
        assert_eq!(code, "forbidden", "{url}");
    }
    // A GET URL does not allow a PUT, nor a PUT URL a GET.
    let response = h.http.put(&get_url).body("y").send().await.unwrap();
    expect_error(response, 403).await;
    let response = h.http.get(&put_url).send().await.unwrap();
    expect_error(response, 403).await;
    assert_eq!(h.blobs.get_bytes(key, 1 << 20).await.unwrap(), b"x");
}

#[tokio::test]
async fn expired_urls_are_403() {
    let far_future: api::state::Clock = Arc::new(|| api::state::unix_now() + 86_400);
    let h = Harness::start_with(test_config(), Some(far_future)).await;
    let key = "tasks/t1/outputs/diff.patch";
    h.blobs.put_bytes(key, b"x".to_vec()).await.unwrap();
    let response = h
        .http
        .get(signed(&h, false, key).await)
        .send()
        .await
        .unwrap();
    let (_, message) = expect_error(response, 403).await;
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn signed_put_over_the_cap_is_413_and_stores_nothing() {
    let h = Harness::start().await;
    let key = "tasks/t1/outputs/trajectory.jsonl";
    let response = h
        .http
        .put(signed(&h, true, key).await)
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    expect_error(response, 413).await;
    assert!(!h.blobs.exists(key).await.unwrap());
}
