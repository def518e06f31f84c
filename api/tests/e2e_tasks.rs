//! End to end, the happy paths: a zip uploaded as multipart and a git URL sent as JSON
//! each run through the real `api` binary, the real `agent-rs job` and the scripted
//! model, and come out COMPLETED with a `diff.patch` that applies to the original code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::process::Command;

use e2e_support::*;
use serde_json::{Value, json};

/// Applies `diff` with `git apply` to a fresh copy of `files`; returns `calc.py` after.
fn apply_to_original(files: &[(&str, &str)], diff: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        std::fs::write(dir.path().join(path), content).unwrap();
    }
    std::fs::write(dir.path().join("fix.patch"), diff).unwrap();
    let applied = Command::new("git")
        .args(["apply", "fix.patch"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(applied.status.success(), "git apply: {applied:?}\n{diff}");
    std::fs::read_to_string(dir.path().join("calc.py")).unwrap()
}

/// The agent's own events (not the server's status events), in stream order.
fn agent_events(events: &[SseEvent]) -> Vec<&SseEvent> {
    events.iter().filter(|e| e.kind() != "status").collect()
}

fn statuses(events: &[SseEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.kind() == "status")
        .map(|e| e.data["status"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_task_streams_agent_events_in_order_and_its_diff_applies_to_the_upload() {
    let model = scripted_model(json!(fix_add_steps())).await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let files = [("calc.py", CALC_PY), ("README.md", "calculator\n")];

    let id = api
        .created_id(api.submit_zip(zip_of(&files), "fix add").await)
        .await;
    let events = api.follow_events(&id).await;

    // The stream tells the whole story once, in order, and ends on the terminal status.
    let ids: Vec<u64> = events.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(events.last().unwrap().data["status"], "COMPLETED");
    let statuses = statuses(&events);
    assert_eq!(statuses.first(), Some(&"QUEUED"), "{statuses:?}");
    assert!(statuses.contains(&"RUNNING_AGENT"), "{statuses:?}");
    let agent = agent_events(&events);
    let kinds: Vec<&str> = agent.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds.first(), Some(&"task_started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"task_finished"), "{kinds:?}");
    assert!(kinds.contains(&"tool_call"), "{kinds:?}");
    let seqs: Vec<u64> = agent
        .iter()
        .map(|e| e.data["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "agent events missing or out of order"
    );

    let task = api.task(&id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["result"]["final_message"], "Fixed add.");

    let diff = api.artifact(&id, "diff.patch").await;
    assert_eq!(
        apply_to_original(&files, &diff),
        "def add(a, b):\n    return a + b\n"
    );
    let result: Value = serde_json::from_str(&api.artifact(&id, "result.json").await).unwrap();
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["files_changed"], 1, "{result}");
}

#[tokio::test(flavor = "multi_thread")]
async fn git_url_task_clones_the_repository_and_produces_a_diff() {
    let model = scripted_model(json!(fix_add_steps())).await;
    let repo = tempfile::tempdir().unwrap();
    git_repo(repo.path());
    // file:// is refused unless both the API's check and the worker's clone allow it.
    let home = Home::new(
        "[api]\nallow_file_git_urls = true\n\n[orchestrator.workspace]\nallow_file_git_urls = true\n",
    );
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let url = format!("file://{}", repo.path().display());

    let id = api
        .created_id(
            api.submit_json(&json!({"git_url": url, "git_ref": "main", "description": "fix add"}))
                .await,
        )
        .await;
    let events = api.follow_events(&id).await;

    assert_eq!(events.last().unwrap().data["status"], "COMPLETED");
    let task = api.task(&id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["input"]["type"], "GIT");
    let diff = api.artifact(&id, "diff.patch").await;
    assert_eq!(
        apply_to_original(&[("calc.py", CALC_PY)], &diff),
        "def add(a, b):\n    return a + b\n"
    );
}
