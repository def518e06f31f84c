//! `api --demo`: the service with the built-in demo model, from the outside. A task needs
//! no model key, completes with a real diff made by the real agent, several tasks at once
//! each get their own session, and a configured model key is refused, not ignored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod demo_support;
mod e2e_support;

use demo_support::{DemoApi, WAIT, demo_command};
use e2e_support::{agent_binary, zip_of};

#[tokio::test(flavor = "multi_thread")]
async fn zip_tasks_complete_with_a_diff_and_no_model_key() {
    let agent = tokio::task::spawn_blocking(agent_binary).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let api = DemoApi::start(&agent, &home.path().join("data")).await;
    assert!(api.token.starts_with("agt_"), "{}", api.token);

    let calc = zip_of(&[
        ("calc.py", "def add(a, b):\n    return a - b\n"),
        ("data.json", "{}\n"),
    ]);
    let notes = zip_of(&[("notes/todo.txt", "buy milk\n")]);
    // Two tasks at once: each conversation gets its own session.
    let first = api.submit_zip(calc, "fix add").await;
    let second = api.submit_zip(notes, "anything").await;

    let task = api.wait_until_finished(&first).await;
    assert_eq!(task["status"], "COMPLETED", "{task}\n{}", api.log());
    let diff = api.artifact(&first, "diff.patch").await;
    assert!(diff.contains("+++ b/calc.py"), "{diff}");
    assert!(
        diff.contains(" def add(a, b):\n+# Note added by the agent-rs demo model"),
        "{diff}"
    );
    let trajectory = api.artifact(&first, "trajectory.jsonl").await;
    for tool in ["list_directory", "read_file_content", "edit_file_content"] {
        assert!(trajectory.contains(tool), "{tool} missing:\n{trajectory}");
    }
    assert!(trajectory.contains("built-in demo model"), "{trajectory}");

    let task = api.wait_until_finished(&second).await;
    assert_eq!(task["status"], "COMPLETED", "{task}\n{}", api.log());
    let diff = api.artifact(&second, "diff.patch").await;
    // A zip's lone top-level folder is unwrapped (as GitHub's archives need).
    assert!(diff.contains("+++ b/todo.txt"), "{diff}");
    assert!(
        diff.contains(" buy milk\n+Note added by the agent-rs demo model"),
        "{diff}"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_configured_model_key_is_refused_without_echoing_it() {
    let home = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        WAIT,
        demo_command(std::path::Path::new("agent-rs"), &home.path().join("data"))
            .env("OPENAI_API_KEY", "sk-live-do-not-print")
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OPENAI_API_KEY is set"), "{stderr}");
    assert!(stderr.contains("--demo"), "{stderr}");
    assert!(!stderr.contains("sk-live-do-not-print"), "{stderr}");
    assert!(output.stdout.is_empty(), "no banner, no token");
}
