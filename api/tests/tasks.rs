//! `/api/v1/tasks`: create (JSON and multipart), read, list, idempotency, cancel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use orchestrator::{InputSource, TaskStatus};
use serde_json::{Value, json};
use support::{ALICE, BOB, EMPTY_ZIP, Harness, expect_error};

#[tokio::test]
async fn json_git_task_is_stored_queued_and_enqueued() {
    let h = Harness::start().await;
    let response = h
        .create_json(json!({
            "git_url": "https://140.82.112.3/org/repo.git",
            "git_ref": "main",
            "description": "fix the failing test",
            "target_file": "src/lib.rs",
            "model": "m",
            "max_turns": 5,
            "max_tokens": 1000,
            "timeout_secs": 60,
        }))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "QUEUED");
    assert_eq!(body["input"]["type"], "GIT");
    assert_eq!(body["input"]["git_ref"], "main");
    assert_eq!(body["max_turns"], 5);
    let tasks = h.tasks_of("alice").await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].id.to_string(), body["id"]);
    assert_eq!(tasks[0].status, TaskStatus::Queued);
    assert_eq!(tasks[0].target_file.as_deref(), Some("src/lib.rs"));
    assert_eq!(h.queue.len(), 1);
    assert_eq!(
        h.cache.status(tasks[0].id).await.unwrap(),
        Some(TaskStatus::Queued)
    );
}

#[tokio::test]
async fn multipart_zip_task_keeps_the_zip_in_the_blob_store() {
    let h = Harness::start().await;
    let form = reqwest::multipart::Form::new()
        .part(
            "zip_file",
            reqwest::multipart::Part::bytes(EMPTY_ZIP.to_vec()).file_name("repo.zip"),
        )
        .text("description", "add a README")
        .text("max_turns", "3");
    let response = h
        .http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(ALICE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["input"],
        json!({"type": "ZIP", "zip_name": "repo.zip"})
    );
    let task = h.tasks_of("alice").await.remove(0);
    let InputSource::Zip { zip_key, .. } = &task.input else {
        panic!("not a zip task: {:?}", task.input);
    };
    assert_eq!(
        h.blobs.get_bytes(zip_key, 1 << 20).await.unwrap(),
        EMPTY_ZIP
    );
    assert_eq!(task.limits.max_turns, Some(3));
}

#[tokio::test]
async fn multipart_git_task_is_accepted() {
    let h = Harness::start().await;
    let form = reqwest::multipart::Form::new()
        .text("git_url", "https://140.82.112.3/org/repo.git")
        .text("description", "fix it");
    let response = h
        .http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(ALICE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn get_returns_the_owners_task() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let response = h
        .http
        .get(h.url(&format!("/api/v1/tasks/{id}")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["description"], "fix the failing test");
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let h = Harness::start().await;
    for id in ["00000000-0000-0000-0000-000000000000", "not-a-uuid"] {
        let response = h
            .http
            .get(h.url(&format!("/api/v1/tasks/{id}")))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        let (code, _) = expect_error(response, 404).await;
        assert_eq!(code, "not_found");
    }
}

#[tokio::test]
async fn list_pages_through_the_owners_tasks_only() {
    let h = Harness::start().await;
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(h.create_git_task().await);
    }
    let bob_task = h
        .http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(BOB)
        .json(&json!({"git_url": "https://140.82.112.3/o/r.git", "description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bob_task.status(), 201);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = h
            .http
            .get(h.url("/api/v1/tasks"))
            .bearer_auth(ALICE)
            .query(&[("limit", "2")]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let page: Value = request.send().await.unwrap().json().await.unwrap();
        for task in page["tasks"].as_array().unwrap() {
            seen.push(task["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    seen.sort();
    created.sort();
    assert_eq!(seen, created);
}

#[tokio::test]
async fn list_filters_by_status_and_refuses_unknown_statuses() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let cancelled = h
        .http
        .post(h.url(&format!("/api/v1/tasks/{id}/cancel")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    h.create_git_task().await;
    let page: Value = h
        .http
        .get(h.url("/api/v1/tasks?status=CANCELLED"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tasks = page["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["id"], id);

    for query in [
        "status=RUNNING",
        "limit=0",
        "limit=1000",
        "limit=x",
        "cursor=not-a-cursor",
    ] {
        let response = h
            .http
            .get(h.url(&format!("/api/v1/tasks?{query}")))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        expect_error(response, 422).await;
    }
}

#[tokio::test]
async fn same_idempotency_key_returns_the_first_task() {
    let h = Harness::start().await;
    let body = json!({"git_url": "https://140.82.112.3/o/r.git", "description": "x"});
    let send = |key: &'static str, token: &'static str| {
        h.http
            .post(h.url("/api/v1/tasks"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("k1", ALICE).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send("k1", ALICE).await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(h.tasks_of("alice").await.len(), 1);
    assert_eq!(h.queue.len(), 1, "the repeat must not enqueue again");

    let other_key = send("k2", ALICE).await.unwrap();
    assert_eq!(other_key.status(), 201);
    let other_owner = send("k1", BOB).await.unwrap();
    assert_eq!(other_owner.status(), 201, "keys are per owner");
}

#[tokio::test]
async fn idempotent_zip_repeat_leaves_only_the_first_upload() {
    let h = Harness::start().await;
    for expected in [201, 200] {
        let form = reqwest::multipart::Form::new()
            .part(
                "zip_file",
                reqwest::multipart::Part::bytes(EMPTY_ZIP.to_vec()).file_name("r.zip"),
            )
            .text("description", "x");
        let response = h
            .http
            .post(h.url("/api/v1/tasks"))
            .bearer_auth(ALICE)
            .header("Idempotency-Key", "zip-1")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
    }
    assert_eq!(h.blob_files().len(), 1);
}

#[tokio::test]
async fn cancel_moves_a_live_task_to_cancelled_and_a_second_cancel_conflicts() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let cancel = || {
        h.http
            .post(h.url(&format!("/api/v1/tasks/{id}/cancel")))
            .bearer_auth(ALICE)
            .send()
    };
    let response = cancel().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "CANCELLED");
    let task = h.tasks_of("alice").await.remove(0);
    assert_eq!(task.status, TaskStatus::Cancelled);
    assert_eq!(
        h.cache.status(task.id).await.unwrap(),
        Some(TaskStatus::Cancelled)
    );
    let (code, message) = expect_error(cancel().await.unwrap(), 409).await;
    assert_eq!(code, "conflict");
    assert!(message.contains("CANCELLED"), "{message}");
}

#[tokio::test]
async fn cancel_reaches_a_task_the_worker_moved_on() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let task_id = id.parse().unwrap();
    h.store
        .transition(
            task_id,
            TaskStatus::Queued,
            TaskStatus::Processing,
            Default::default(),
        )
        .await
        .unwrap();
    let response = h
        .http
        .post(h.url(&format!("/api/v1/tasks/{id}/cancel")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        h.store.get(task_id).await.unwrap().unwrap().status,
        TaskStatus::Cancelled
    );
}

use orchestrator::{BlobStore, StatusCache, TaskStore};
