//! Bearer auth: no token or an unknown one is a 401 that says how to authenticate;
//! another owner's task looks like no task at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{BOB, Harness, expect_error};

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_are_401_with_a_bearer_challenge() {
    let h = Harness::start().await;
    let requests = [
        h.http.get(h.url("/api/v1/tasks")),
        h.http
            .get(h.url("/api/v1/tasks"))
            .bearer_auth("wrong-token"),
        h.http
            .get(h.url("/api/v1/tasks"))
            .header("authorization", "Basic YWxpY2U6eA=="),
        h.http.get(h.url("/api/task/x/status")),
        h.http
            .post(h.url("/api/v1/tasks"))
            .json(&serde_json::json!({})),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );
        let (code, _) = expect_error(response, 401).await;
        assert_eq!(code, "unauthorized");
    }
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn another_owners_task_is_404_on_every_route() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    for (method, path) in [
        ("GET", format!("/api/v1/tasks/{id}")),
        ("POST", format!("/api/v1/tasks/{id}/cancel")),
        ("GET", format!("/api/v1/tasks/{id}/events")),
        ("GET", format!("/api/v1/tasks/{id}/artifacts/diff.patch")),
        ("GET", format!("/api/task/{id}/status")),
    ] {
        let response = h
            .http
            .request(method.parse().unwrap(), h.url(&path))
            .bearer_auth(BOB)
            .send()
            .await
            .unwrap();
        let (code, _) = expect_error(response, 404).await;
        assert_eq!(code, "not_found", "{path}");
    }
    let listed: serde_json::Value = h
        .http
        .get(h.url("/api/v1/tasks"))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tasks"], serde_json::json!([]));
    assert_eq!(
        h.tasks_of("alice").await[0].status,
        orchestrator::TaskStatus::Queued,
        "bob's cancel must not touch it"
    );
}
