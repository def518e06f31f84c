//! End to end, a follow-up message: a zip task runs to COMPLETED, `POST .../messages`
//! continues it as run 2 from where run 1 left the code and the conversation, and the
//! task then shows both runs, a cumulative `diff.patch`, run 2's own `step.patch`, and
//! each run's artifacts and events on their own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::process::Command;

use e2e_support::*;
use serde_json::{Value, json};

const README: &str = "calculator\n";

/// Applies `diff` with `git apply` to a fresh copy of `files`; returns the folder.
fn applied(files: &[(&str, &str)], diff: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        std::fs::write(dir.path().join(path), content).unwrap();
    }
    std::fs::write(dir.path().join("change.patch"), diff).unwrap();
    let out = Command::new("git")
        .args(["apply", "change.patch"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "git apply: {out:?}\n{diff}");
    std::fs::remove_file(dir.path().join("change.patch")).unwrap();
    dir
}

async fn post_message(api: &Api, id: &str, body: Value) -> (u16, Value) {
    let response = api
        .http
        .post(api.url(&format!("/api/v1/tasks/{id}/messages")))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_text(api: &Api, path: &str) -> (u16, String) {
    let response = api
        .http
        .get(api.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follow_up_continues_the_task_as_its_second_run() {
    let mut steps = fix_add_steps().to_vec();
    steps.push(
        json!({"type": "tool_calls", "calls": [{"name": "edit_file_content",
        "arguments": {"file_path": "README.md", "old_text": "calculator",
                      "new_text": "calculator: add works"}}]}),
    );
    steps.push(json!({"type": "message", "content": "Documented it."}));
    let model = scripted_model(json!(steps)).await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let files = [("calc.py", CALC_PY), ("README.md", README)];
    let id = api
        .created_id(api.submit_zip(zip_of(&files), "fix add").await)
        .await;

    // Not finished yet (or just queued): no follow-up.
    let (status, body) = post_message(&api, &id, json!({"message": "too early"})).await;
    assert_eq!(status, 409, "{body}");
    let first = api
        .wait_for_status(&id, |s| s == "COMPLETED" || s == "FAILED")
        .await;
    assert_eq!(first["status"], "COMPLETED", "{first}\n{}", api.log());
    assert_eq!(first["run_number"], 1);

    // Bad messages are refused before anything changes.
    assert_eq!(
        post_message(&api, &id, json!({"message": "  "})).await.0,
        422
    );
    assert_eq!(post_message(&api, &id, json!({"text": "x"})).await.0, 422);
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        post_message(&api, unknown, json!({"message": "x"})).await.0,
        404
    );

    let (status, continued) = post_message(
        &api,
        &id,
        json!({"message": "now document it in the README"}),
    )
    .await;
    assert_eq!(status, 202, "{continued}");
    assert_eq!(continued["run_number"], 2, "{continued}");
    assert_eq!(continued["follow_up"], "now document it in the README");
    // A running (or queued) task takes no second follow-up.
    let (status, body) = post_message(&api, &id, json!({"message": "again"})).await;
    assert_eq!(status, 409, "{body}");

    // The task's stream is the current run's: it ends when run 2 does.
    let events = api.follow_events(&id).await;
    assert_eq!(
        events.last().unwrap().data["status"],
        "COMPLETED",
        "{events:?}"
    );
    let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&"conversation_resumed"), "{kinds:?}");
    let task = api.task(&id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["run_number"], 2);
    assert_eq!(task["result"]["final_message"], "Documented it.");

    // Run 2's model saw run 1's conversation, then the follow-up.
    let second_run_first_request = &model.requests()[2].body;
    let said: Vec<String> = second_run_first_request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(said.iter().any(|c| c == "Fixed add."), "{said:?}");
    assert!(said.last().unwrap().contains("now document it"), "{said:?}");

    // The runs, in order.
    let runs = api.get_json(&format!("/api/v1/tasks/{id}/runs")).await;
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["run_number"], 1);
    assert_eq!(runs[0]["instruction"], "fix add");
    assert_eq!(runs[0]["status"], "COMPLETED");
    assert_eq!(runs[0]["current"], false);
    assert_eq!(runs[0]["result"]["final_message"], "Fixed add.");
    assert_eq!(runs[1]["run_number"], 2);
    assert_eq!(runs[1]["current"], true);

    // diff.patch is cumulative, step.patch run 2's own, run 1's diff its own.
    let cumulative = applied(&files, &api.artifact(&id, "diff.patch").await);
    let read = |dir: &tempfile::TempDir, name: &str| {
        std::fs::read_to_string(dir.path().join(name)).unwrap()
    };
    assert_eq!(
        read(&cumulative, "calc.py"),
        "def add(a, b):\n    return a + b\n"
    );
    assert_eq!(read(&cumulative, "README.md"), "calculator: add works\n");
    let step = api.artifact(&id, "step.patch").await;
    assert!(
        step.contains("README.md") && !step.contains("calc.py"),
        "{step}"
    );
    let (status, first_diff) = get_text(
        &api,
        &format!("/api/v1/tasks/{id}/runs/1/artifacts/diff.patch"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        first_diff.contains("calc.py") && !first_diff.contains("README"),
        "{first_diff}"
    );
    let (status, _) = get_text(
        &api,
        &format!("/api/v1/tasks/{id}/runs/3/artifacts/diff.patch"),
    )
    .await;
    assert_eq!(status, 404);

    // Run 1's events on their own: its story, ending with its own COMPLETED.
    let (status, text) = get_text(&api, &format!("/api/v1/tasks/{id}/runs/1/events")).await;
    assert_eq!(status, 200);
    assert!(text.contains("\"final_message\":\"Fixed add.\""), "{text}");
    assert!(!text.contains("conversation_resumed"), "{text}");
}
