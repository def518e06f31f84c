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

/// The value of the owner's setup secret, as the server's environment holds it.
const NPM_SECRET: &str = "npm-e2e-4f1c9a7d2b";

#[tokio::test(flavor = "multi_thread")]
async fn a_setup_gets_its_owners_secrets_and_the_agent_phase_never_does() {
    let model = scripted_model(json!([
        shell_step(
            "echo \"agent sees [${NPM_TOKEN:-nothing}]\"; \
             echo \"environs holding it: $(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^NPM_TOKEN=')\"; \
             cat setup-made.txt"
        ),
        {"type": "message", "content": "Done."}
    ]))
    .await;
    let home = Home::new(
        "[orchestrator.setup_secrets.owner_env.dev]\nNPM_TOKEN = \"E2E_SETUP_NPM_TOKEN\"\n\n\
         [orchestrator.setup_secrets.owner_env.someone-else]\nOTHER_TOKEN = \"E2E_OTHER_TOKEN\"\n",
    );
    let api = Api::start_env(
        &home,
        "127.0.0.1:0",
        &model,
        &[],
        &[
            ("E2E_SETUP_NPM_TOKEN", NPM_SECRET.to_string()),
            ("E2E_OTHER_TOKEN", "other-owners-secret".to_string()),
        ],
    )
    .await;
    // The script itself must not hold the value (the task shows its setup): it prints
    // the value reversed, which the redactor does not know.
    let setup = "echo \"reversed: $(printf %s \"$NPM_TOKEN\" | rev)\"; \
                 echo \"printed: $NPM_TOKEN\"; echo \"other: [${OTHER_TOKEN:-none}]\"; \
                 echo \"length ${#NPM_TOKEN}\" > setup-made.txt";
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
                .text("setup", setup),
        )
        .send()
        .await
        .unwrap();
    let id = api.created_id(response).await;
    let task = api.wait_for_status(&id, is_terminal).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");

    // The setup had the owner's secret (and no other owner's); its log does not show it.
    let log = api.artifact(&id, "setup.log").await;
    let reversed: String = NPM_SECRET.chars().rev().collect();
    assert!(log.contains(&format!("reversed: {reversed}")), "{log}");
    assert!(log.contains("printed: "), "{log}");
    assert!(log.contains("other: [none]"), "{log}");
    // The agent's commands: no variable, no process environment holding it, only what
    // the setup wrote.
    let seen = model.requests()[1].body.to_string();
    assert!(seen.contains("agent sees [nothing]"), "{seen}");
    assert!(seen.contains("environs holding it: 0"), "{seen}");
    assert!(seen.contains("length 18"), "{seen}");
    // Nowhere: not the model's input, an artifact, the task, the server's log or a file
    // of the data folder.
    let mut places = vec![
        (
            "model requests".to_string(),
            format!("{:?}", model.requests()),
        ),
        ("task".to_string(), task.to_string()),
        ("server log".to_string(), api.log()),
    ];
    for name in [
        "setup.log",
        "diff.patch",
        "trajectory.jsonl",
        "result.json",
        "agent.log",
    ] {
        places.push((name.to_string(), api.artifact(&id, name).await));
    }
    for entry in walk(&home.data()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        places.push((
            entry.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (place, text) in places {
        assert!(!text.contains(NPM_SECRET), "the setup secret is in {place}");
        assert!(
            !text.contains("other-owners-secret"),
            "another owner's secret is in {place}"
        );
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(kind) if kind.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "COMPLETED" | "FAILED" | "CANCELLED")
}
