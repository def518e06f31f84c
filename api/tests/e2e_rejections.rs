//! End to end, bad input: against the real `api` binary, every malformed create gets
//! its 4xx with a message naming the problem, and afterwards there is no task, no blob
//! and no agent run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use e2e_support::*;
use reqwest::RequestBuilder;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// Small enough that an oversized multipart body is cheap to send.
const MULTIPART_LIMIT: usize = 64 * 1024;
const PUBLIC_GIT: &str = "https://140.82.112.3/o/r.git";

fn zip_form(zip: Vec<u8>, description: Option<&str>) -> Form {
    let form = Form::new().part("zip_file", Part::bytes(zip).file_name("repo.zip"));
    match description {
        Some(text) => form.text("description", text.to_string()),
        None => form,
    }
}

/// Sends `request` and checks its status and that its error message mentions `reason`.
async fn expect_refused(name: &str, request: RequestBuilder, status: u16, reason: &str) {
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => panic!("{name}: no answer: {err}"),
    };
    assert_eq!(response.status(), status, "{name}");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(reason),
        "{name}: `{message}` does not mention `{reason}`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_create_gets_its_4xx_and_leaves_nothing_behind() {
    let model = scripted_model(json!([{"type": "message", "content": "never asked"}])).await;
    let home = Home::new(&format!(
        "[api]\nmultipart_body_limit = {MULTIPART_LIMIT}\n"
    ));
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let blobs_before = home.blob_files();
    let create = || api.http.post(api.url("/api/v1/tasks")).bearer_auth(TOKEN);
    let good_zip = zip_of(&[("calc.py", CALC_PY)]);

    let cases: Vec<(&str, RequestBuilder, u16, &str)> = vec![
        (
            "JSON without a description",
            create().json(&json!({"git_url": PUBLIC_GIT})),
            422,
            "description",
        ),
        (
            "blank description",
            create().json(&json!({"git_url": PUBLIC_GIT, "description": "  "})),
            422,
            "description",
        ),
        (
            "zip without a description",
            create().multipart(zip_form(good_zip.clone(), None)),
            422,
            "description",
        ),
        (
            "file:// URL (not allowed by default)",
            create().json(&json!({"git_url": "file:///etc", "description": "x"})),
            422,
            "`file`",
        ),
        (
            "private git host",
            create().json(&json!({"git_url": "https://10.1.2.3/o/r.git", "description": "x"})),
            422,
            "private",
        ),
        (
            "loopback git host",
            create().json(&json!({"git_url": "https://127.0.0.1/o/r.git", "description": "x"})),
            422,
            "loopback",
        ),
        (
            "metadata git host",
            create().json(&json!({"git_url": "https://169.254.169.254/r", "description": "x"})),
            422,
            "metadata",
        ),
        (
            "upload that is not a zip",
            create().multipart(zip_form(b"just some text, no zip".repeat(4), Some("x"))),
            422,
            "not a zip",
        ),
        (
            "unknown JSON field",
            create().json(&json!({"git_url": PUBLIC_GIT, "description": "x", "branch": "main"})),
            422,
            "`branch`",
        ),
        (
            "unknown multipart field",
            create().multipart(zip_form(good_zip.clone(), Some("x")).text("priority", "high")),
            422,
            "`priority`",
        ),
        (
            "malformed JSON",
            create()
                .header("content-type", "application/json")
                .body("{\"git_url\": "),
            400,
            "JSON",
        ),
        (
            "neither JSON nor multipart",
            create().header("content-type", "text/plain").body("fix it"),
            415,
            "text/plain",
        ),
        (
            "JSON body over the limit",
            create().json(&json!({"git_url": PUBLIC_GIT, "description": "x".repeat(70_000)})),
            413,
            "limit",
        ),
        (
            "multipart body over the limit",
            create().multipart(zip_form(vec![b'P'; 2 * MULTIPART_LIMIT], Some("x"))),
            413,
            "too large",
        ),
        (
            "no token",
            api.http
                .post(api.url("/api/v1/tasks"))
                .json(&json!({"git_url": PUBLIC_GIT, "description": "x"})),
            401,
            "token",
        ),
        (
            "unknown token",
            api.http
                .post(api.url("/api/v1/tasks"))
                .bearer_auth("not-the-token")
                .json(&json!({"git_url": PUBLIC_GIT, "description": "x"})),
            401,
            "token",
        ),
    ];
    for (name, request, status, reason) in cases {
        expect_refused(name, request, status, reason).await;
    }

    let listed = api.get_json("/api/v1/tasks").await;
    assert_eq!(listed["tasks"], json!([]), "a task was stored: {listed}");
    assert_eq!(home.blob_files(), blobs_before, "a blob was left behind");
    assert_eq!(model.steps_consumed(), 0, "an agent ran");
}
