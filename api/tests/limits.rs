//! Resource bounds: unfinished tasks per owner (429 with `Retry-After`), uploads in
//! progress at once (503 with `Retry-After`), and `/blobs` transfers on which nothing
//! moves (cut).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde_json::json;
use support::{ALICE, BOB, EMPTY_ZIP, Harness, test_config};

/// A hang guard: every bounded request here answers long before.
const GUARD: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_owner_at_the_live_task_cap_gets_429_with_retry_after_and_others_do_not() {
    let config = api::ApiConfig {
        max_live_tasks_per_owner: 2,
        ..test_config()
    };
    let h = Harness::start_with(config, None).await;
    let first = h.create_git_task().await;
    h.create_git_task().await;

    let refused = h
        .create_json(json!({"git_url": "https://140.82.112.3/o/r.git", "description": "x"}))
        .await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
    assert_eq!(h.tasks_of("alice").await.len(), 2, "nothing stored");

    // Another owner is not held back by alice's tasks.
    let bob = h
        .http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(BOB)
        .json(&json!({"git_url": "https://140.82.112.3/o/r.git", "description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), 201);

    // A finished (here: cancelled) task frees its place.
    let cancelled = h
        .http
        .post(h.url(&format!("/api/v1/tasks/{first}/cancel")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    h.create_git_task().await;
}

/// A multipart create whose body sends its first bytes, then nothing.
fn stalled_upload(h: &Harness) -> reqwest::RequestBuilder {
    let first = bytes::Bytes::from_static(
        b"--b\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nx\r\n",
    );
    let body = stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(stream::pending());
    h.http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(ALICE)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(reqwest::Body::wrap_stream(body))
}

#[tokio::test]
async fn uploads_past_the_cap_get_503_with_retry_after_and_other_requests_go_on() {
    let config = api::ApiConfig {
        max_concurrent_uploads: 1,
        ..test_config()
    };
    let h = Harness::start_with(config, None).await;
    let holding = tokio::spawn(stalled_upload(&h).send());
    // The stalled upload holds the one slot once the server has its headers.
    let refused = tokio::time::timeout(GUARD, async {
        loop {
            let form = reqwest::multipart::Form::new()
                .text("description", "fix it")
                .part(
                    "zip_file",
                    reqwest::multipart::Part::bytes(EMPTY_ZIP.to_vec()).file_name("a.zip"),
                );
            let response = h
                .http
                .post(h.url("/api/v1/tasks"))
                .bearer_auth(ALICE)
                .multipart(form)
                .send()
                .await
                .unwrap();
            if response.status() == 503 {
                break response;
            }
            assert_eq!(response.status(), 201, "the slot was free: created");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the second upload was never refused");
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "busy");
    // A JSON create is no upload: it goes through.
    h.create_git_task().await;

    // Once the stalled client goes away, its slot is free again.
    holding.abort();
    let created = tokio::time::timeout(GUARD, async {
        loop {
            let form = reqwest::multipart::Form::new()
                .text("description", "fix it")
                .part(
                    "zip_file",
                    reqwest::multipart::Part::bytes(EMPTY_ZIP.to_vec()).file_name("a.zip"),
                );
            let response = h
                .http
                .post(h.url("/api/v1/tasks"))
                .bearer_auth(ALICE)
                .multipart(form)
                .send()
                .await
                .unwrap();
            if response.status() == 201 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(created.is_ok(), "the slot was never released");
}

#[tokio::test]
async fn a_blob_upload_on_which_nothing_moves_is_cut() {
    let config = api::ApiConfig {
        blob_idle_timeout_secs: 1,
        ..test_config()
    };
    let h = Harness::start_with(config, None).await;
    let url = orchestrator::BlobStore::signed_put_url(
        h.blobs.as_ref(),
        "tasks/x/outputs/agent.log",
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let first = bytes::Bytes::from_static(b"some log\n");
    let body = stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(stream::pending());
    let sent = tokio::time::timeout(
        GUARD,
        h.http
            .put(url)
            .header("content-length", "1000")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    )
    .await
    .expect("a stalled blob upload held its connection");
    // Cut while reading the body: an error status, or the connection closed.
    if let Ok(response) = sent {
        let status = response.status();
        assert!(
            status.is_client_error() || status.is_server_error(),
            "{status}"
        );
    }
    assert!(
        !h.data
            .path()
            .join("blobs/tasks/x/outputs/agent.log")
            .exists(),
        "a partial upload was kept"
    );
}
