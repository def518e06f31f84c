//! `agent-rs run --resume`: a follow-up run starts from where the previous one left the
//! workspace, with the conversation so far, and leaves a cumulative `diff.patch` and its
//! own `step.patch`, both applying with `git apply`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use serde_json::json;
use support::*;

fn seed(dir: &Path) {
    std::fs::write(dir.join("notes.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(dir.join("old.txt"), "obsolete\n").unwrap();
}

const FIRST_PATCH: &str = "*** Begin Patch
*** Add File: added.md
+first run
*** Delete File: old.txt
*** Update File: notes.txt
@@
 one
-two
+TWO
*** End Patch";

const SECOND_PATCH: &str = "*** Begin Patch
*** Update File: added.md
@@
-first run
+first run
+second run
*** Update File: notes.txt
@@
 TWO
-three
+THREE
*** End Patch";

async fn first_run(ws: &Path, out: &Path) -> Run {
    let server = server(json!({"steps": [
        {"type": "tool_calls", "content": "patching", "calls": [
            {"name": "apply_patch", "arguments": {"input": FIRST_PATCH}}]},
        {"type": "message", "content": "first done"}
    ]}))
    .await;
    run_agent(ws, out, &server.base_url(), &["upper-case two"], &[]).await
}

async fn follow_up(
    ws: &Path,
    prev: &Path,
    out: &Path,
    patch: &str,
    message: &str,
) -> (Run, Vec<serde_json::Value>) {
    let server = server(json!({"steps": [
        {"type": "tool_calls", "calls": [{"name": "apply_patch", "arguments": {"input": patch}}]},
        {"type": "message", "content": "follow-up done"}
    ]}))
    .await;
    let run = run_agent(
        ws,
        out,
        &server.base_url(),
        &["--resume", prev.to_str().unwrap(), message],
        &[],
    )
    .await;
    let bodies = server.requests().into_iter().map(|r| r.body).collect();
    (run, bodies)
}

/// The chat messages of the first request as (role, text) pairs, tool calls as their name.
fn conversation(body: &serde_json::Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = m["role"].as_str().unwrap().to_string();
            let mut text = m["content"].as_str().unwrap_or_default().to_string();
            for call in m["tool_calls"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    " <{}>",
                    call["function"]["name"].as_str().unwrap()
                ));
            }
            (role, text)
        })
        .collect()
}

async fn resumes_in(ws: &Path) {
    let pristine = tempfile::tempdir().unwrap();
    copy_tree(ws, pristine.path());
    let out1 = tempfile::tempdir().unwrap();
    let run1 = first_run(ws, out1.path()).await;
    assert_eq!(run1.code(), 0, "stderr: {}", run1.stderr());
    let after_first = tempfile::tempdir().unwrap();
    copy_tree(ws, after_first.path());

    let out2 = tempfile::tempdir().unwrap();
    let (run2, requests) = follow_up(
        ws,
        out1.path(),
        out2.path(),
        SECOND_PATCH,
        "now upper-case three",
    )
    .await;
    assert_eq!(run2.code(), 0, "stderr: {}", run2.stderr());

    // The model saw the first run's turns, then the follow-up.
    let seen = conversation(&requests[0]);
    let roles: Vec<&str> = seen.iter().map(|(role, _)| role.as_str()).collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "assistant", "user"],
        "{seen:?}"
    );
    assert!(seen[1].1.contains("upper-case two"), "{seen:?}");
    assert!(seen[2].1.contains("patching <apply_patch>"), "{seen:?}");
    assert!(seen[3].1.contains("added.md"), "{seen:?}");
    assert_eq!(seen[4].1, "first done");
    assert!(seen[5].1.contains("now upper-case three"), "{seen:?}");

    // diff.patch is cumulative (from the base), step.patch this run's own changes.
    let cumulative = run2.diff();
    let step = std::fs::read_to_string(out2.path().join("step.patch")).unwrap();
    assert!(
        cumulative.contains("old.txt") && cumulative.contains("+THREE"),
        "{cumulative}"
    );
    assert!(
        !step.contains("old.txt") && step.contains("+second run"),
        "{step}"
    );
    git_apply(pristine.path(), &cumulative);
    assert_eq!(tree_contents(pristine.path()), tree_contents(ws));
    git_apply(after_first.path(), &step);
    assert_eq!(tree_contents(after_first.path()), tree_contents(ws));
    let result = run2.result();
    assert_eq!(result["files_changed"], 3, "{result}");
    assert_eq!(result["step_files_changed"], 2, "{result}");
    assert!(
        run2.event_types()
            .contains(&"conversation_resumed".to_string())
    );

    // A resumed run can be resumed in turn: the whole chain is replayed.
    let out3 = tempfile::tempdir().unwrap();
    let third = "*** Begin Patch\n*** Update File: notes.txt\n@@\n-one\n+ONE\n*** End Patch";
    let (run3, requests) = follow_up(ws, out2.path(), out3.path(), third, "and one").await;
    assert_eq!(run3.code(), 0, "stderr: {}", run3.stderr());
    let seen = conversation(&requests[0]);
    let users: Vec<&str> = seen
        .iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, text)| text.as_str())
        .collect();
    assert_eq!(users.len(), 3, "{seen:?}");
    assert!(
        users[0].contains("upper-case two")
            && users[1].contains("three")
            && users[2].contains("and one")
    );
    assert!(
        seen.iter().any(|(_, text)| text == "follow-up done"),
        "{seen:?}"
    );
    let pristine_again = tempfile::tempdir().unwrap();
    seed(pristine_again.path());
    if ws.join(".gitignore").exists() {
        std::fs::copy(
            ws.join(".gitignore"),
            pristine_again.path().join(".gitignore"),
        )
        .unwrap();
    }
    git_apply(pristine_again.path(), &run3.diff());
    assert_eq!(tree_contents(pristine_again.path()), tree_contents(ws));
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_ups_in_a_plain_folder() {
    let ws = tempfile::tempdir().unwrap();
    seed(ws.path());
    resumes_in(ws.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_ups_in_a_git_repository() {
    let ws = tempfile::tempdir().unwrap();
    seed(ws.path());
    std::fs::write(ws.path().join(".gitignore"), "build/\n").unwrap();
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "-A"]);
    git(ws.path(), &["commit", "-qm", "start"]);
    resumes_in(ws.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_changed_since_is_refused_untouched() {
    let ws = tempfile::tempdir().unwrap();
    seed(ws.path());
    let out1 = tempfile::tempdir().unwrap();
    assert_eq!(first_run(ws.path(), out1.path()).await.code(), 0);
    std::fs::write(ws.path().join("added.md"), "edited by hand\n").unwrap();
    let before = tree_contents(ws.path());
    let out2 = tempfile::tempdir().unwrap();
    let (run, requests) =
        follow_up(ws.path(), out1.path(), out2.path(), SECOND_PATCH, "more").await;
    assert_eq!(run.code(), 2, "stderr: {}", run.stderr());
    assert!(
        run.stderr().contains("not where the previous run left it"),
        "{}",
        run.stderr()
    );
    assert!(requests.is_empty(), "the model was called");
    assert_eq!(tree_contents(ws.path()), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_conversation_is_summarized() {
    let ws = tempfile::tempdir().unwrap();
    seed(ws.path());
    let out1 = tempfile::tempdir().unwrap();
    assert_eq!(first_run(ws.path(), out1.path()).await.code(), 0);
    let config = tempfile::tempdir().unwrap();
    let config_file = config.path().join("agent.toml");
    std::fs::write(&config_file, "[model]\ncontext_window = 120\n").unwrap();
    let server = server(json!({"steps": [{"type": "message", "content": "ok"}]})).await;
    let out2 = tempfile::tempdir().unwrap();
    let run = run_agent(
        ws.path(),
        out2.path(),
        &server.base_url(),
        &[
            "--config",
            config_file.to_str().unwrap(),
            "--resume",
            out1.path().to_str().unwrap(),
            "go on",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let seen = conversation(&server.requests()[0].body);
    let roles: Vec<&str> = seen.iter().map(|(role, _)| role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "user"], "{seen:?}");
    // The latest of the earlier conversation is kept, the oldest left out.
    let summary = &seen[1].1;
    assert!(
        summary.contains("upper-case two") && summary.contains("you: first done"),
        "{summary}"
    );
    assert!(summary.contains("earlier lines left out"), "{summary}");
    let resumed = run
        .events()
        .into_iter()
        .find(|e| e["type"] == "conversation_resumed")
        .unwrap();
    assert_eq!(resumed["summarized"], true);
    assert_eq!(
        std::fs::read_to_string(out2.path().join("step.patch")).unwrap(),
        ""
    );
}
