//! End to end, a task's setup script (the `setup` field): it runs in the workspace
//! before the agent, through the real `api`, the real `agent-rs job` (in the embedded
//! runner's sandbox) and the scripted model; its output is the `setup.log` artifact,
//! what it made is the agent's starting state (not part of the diff), and a failing
//! setup fails the task with the log's tail, without calling the model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use e2e_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_setup_runs_before_the_agent_and_its_log_is_an_artifact() {
    let model = scripted_model(json!([
        shell_step("cat prepared.txt"),
        {"type": "message", "content": "Saw it."}
    ]))
    .await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let files = [("calc.py", CALC_PY)];
    let response = api
        .http
        .post(api.url("/api/v1/tasks"))
        .bearer_auth(TOKEN)
        .multipart(
            reqwest::multipart::Form::new()
                .part(
                    "zip_file",
                    reqwest::multipart::Part::bytes(zip_of(&files)).file_name("code.zip"),
                )
                .text("description", "look")
                .text("setup", "echo made-by-setup > prepared.txt; echo SETUP-RAN"),
        )
        .send()
        .await
        .unwrap();
    let id = api.created_id(response).await;
    let task = api.wait_for_status(&id, is_terminal).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(
        task["setup"],
        "echo made-by-setup > prepared.txt; echo SETUP-RAN"
    );

    let log = api.artifact(&id, "setup.log").await;
    assert!(log.contains("SETUP-RAN"), "{log}");
    assert!(log.contains("exit code 0"), "{log}");
    // The agent's command saw what the setup made...
    let seen = model.requests()[1].body.to_string();
    assert!(seen.contains("made-by-setup"), "{seen}");
    // ...which is the starting state, not a change of the agent's.
    let diff = api.artifact(&id, "diff.patch").await;
    assert!(!diff.contains("prepared.txt"), "{diff}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_setup_fails_the_task_with_its_log_tail_and_no_model_call() {
    let model = scripted_model(json!(fix_add_steps())).await;
    let home = Home::new(
        "[api]\nallow_file_git_urls = true\n\n[orchestrator.workspace]\nallow_file_git_urls = true\n",
    );
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let repo = tempfile::tempdir().unwrap();
    git_repo(repo.path());
    let url = format!("file://{}", repo.path().display());
    let id = api
        .created_id(
            api.submit_json(&json!({
                "git_url": url,
                "description": "fix add",
                "setup": "echo dependency-install-broke >&2; exit 3"
            }))
            .await,
        )
        .await;
    let task = api.wait_for_status(&id, is_terminal).await;
    assert_eq!(task["status"], "FAILED", "{task}");
    let said = format!("{} {}", task["message"], task["result"]["error"]);
    assert!(said.contains("dependency-install-broke"), "{task}");
    assert!(said.contains("setup failed"), "{task}");
    let log = api.artifact(&id, "setup.log").await;
    assert!(log.contains("exit code 3"), "{log}");
    assert!(model.requests().is_empty(), "the model was called");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blank_or_nul_setup_is_refused_on_its_field() {
    let model = scripted_model(json!(fix_add_steps())).await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    for setup in ["   ", "echo a\u{0}b"] {
        let response = api
            .submit_json(&json!({
                "git_url": "https://example.com/repo.git",
                "description": "fix add",
                "setup": setup
            }))
            .await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(status.is_client_error(), "{status} {body}");
        assert_eq!(body["error"]["field"], "setup", "{body}");
    }
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "COMPLETED" | "FAILED" | "CANCELLED")
}
