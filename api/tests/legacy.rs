//! The original routes keep their shapes: `POST /api/task` with `task_description`,
//! `GET /api/task/{id}/status`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{ALICE, EMPTY_ZIP, Harness, expect_error};

async fn status_of(h: &Harness, id: &str) -> Value {
    let response = h
        .http
        .get(h.url(&format!("/api/task/{id}/status")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn multipart_git_url_task_and_its_status() {
    let h = Harness::start().await;
    let form = Form::new()
        .text("git_url", "https://140.82.112.3/o/r.git")
        .text("task_description", "fix it")
        .text("target_file", "main.py")
        .text("client_version", "1.2"); // unknown fields are skipped here
    let response = h
        .http
        .post(h.url("/api/task"))
        .bearer_auth(ALICE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "QUEUED");
    let id = created["task_id"].as_str().unwrap();
    assert_eq!(
        status_of(&h, id).await,
        json!({"task_id": id, "status": "QUEUED", "message": null, "pr_url": null})
    );
    assert_eq!(
        h.tasks_of("alice").await[0].target_file.as_deref(),
        Some("main.py")
    );
}

#[tokio::test]
async fn multipart_zip_task() {
    let h = Harness::start().await;
    let form = Form::new()
        .part(
            "zip_file",
            Part::bytes(EMPTY_ZIP.to_vec()).file_name("code.zip"),
        )
        .text("task_description", "fix it");
    let response = h
        .http
        .post(h.url("/api/task"))
        .bearer_auth(ALICE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.blob_files().len(), 1);
}

#[tokio::test]
async fn urlencoded_form_task() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/api/task"))
        .bearer_auth(ALICE)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("git_url=https%3A%2F%2F140.82.112.3%2Fo%2Fr.git&task_description=fix+it")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.tasks_of("alice").await[0].description, "fix it");
}

#[tokio::test]
async fn legacy_rejections_leave_nothing_behind() {
    let h = Harness::start().await;
    let no_description = Form::new().text("git_url", "https://140.82.112.3/o/r.git");
    let no_source = Form::new().text("task_description", "x");
    let bad_url = Form::new()
        .text("git_url", "file:///etc")
        .text("task_description", "x");
    let bad_zip = Form::new()
        .part("zip_file", Part::bytes(b"nope".to_vec()).file_name("a.zip"))
        .text("task_description", "x");
    for (form, needle) in [
        (no_description, "task_description"),
        (no_source, "git_url"),
        (bad_url, "`file`"),
        (bad_zip, "not a zip"),
    ] {
        let response = h
            .http
            .post(h.url("/api/task"))
            .bearer_auth(ALICE)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let (_, message) = expect_error(response, 422).await;
        assert!(message.contains(needle), "{needle}: {message}");
    }
    h.assert_nothing_stored().await;
}
