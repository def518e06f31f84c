//! Mistakes in a suite or on the command line: exit code 2 and a message naming the
//! file or the flag, before any attempt runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness_support;

use harness_support::*;

fn run_bad_task(task_toml: &str) -> (i32, String) {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "name = \"bad\"\n");
    task(&suite, "broken-task", task_toml, None, &[]);
    let run = run_suite(&suite, &root.path().join("out"), &["--scripted"]);
    assert!(!root.path().join("out/report.json").exists());
    (code(&run), stderr(&run))
}

#[test]
fn unknown_task_field_exits_2_naming_the_file_and_field() {
    let (code, text) = run_bad_task("instruction = \"x\"\ncheck = \"true\"\ntimeout_secs = 3\n");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("broken-task/task.toml"), "{text}");
    assert!(text.contains("timeout_secs"), "{text}");
}

#[test]
fn missing_required_field_exits_2_naming_the_file_and_field() {
    let (code, text) = run_bad_task("instruction = \"x\"\n");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("broken-task/task.toml"), "{text}");
    assert!(text.contains("missing field `check`"), "{text}");
}

#[test]
fn malformed_script_exits_2_under_scripted() {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "");
    task(
        &suite,
        "bad-script",
        "instruction = \"x\"\ncheck = \"true\"\n",
        Some(serde_json::json!({"steps": [{"type": "teleport"}]})),
        &[],
    );
    let run = run_suite(&suite, &root.path().join("out"), &["--scripted"]);
    assert_eq!(code(&run), 2);
    assert!(
        stderr(&run).contains("bad-script/script.json"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn missing_suite_exits_2() {
    let root = tempfile::tempdir().unwrap();
    let run = run_suite(&root.path().join("nowhere"), &root.path().join("out"), &[]);
    assert_eq!(code(&run), 2);
    assert!(
        stderr(&run).contains("nowhere/suite.toml"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn missing_agent_binary_exits_2_saying_how_to_fix_it() {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "");
    let run = run_suite(
        &suite,
        &root.path().join("out"),
        &["--agent-bin", "/nonexistent/agent-rs"],
    );
    assert_eq!(code(&run), 2);
    assert!(stderr(&run).contains("--agent-bin /nonexistent/agent-rs: no such file"));
}

#[test]
fn zero_parallel_exits_2() {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "");
    let run = run_suite(&suite, &root.path().join("out"), &["--parallel", "0"]);
    assert_eq!(code(&run), 2);
    assert!(stderr(&run).contains("--parallel"), "{}", stderr(&run));
}

#[test]
fn model_and_scripted_together_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "");
    let run = run_suite(
        &suite,
        &root.path().join("out"),
        &["--scripted", "--model", "m"],
    );
    assert_eq!(code(&run), 2);
    assert!(
        stderr(&run).contains("cannot be used with"),
        "{}",
        stderr(&run)
    );
}
