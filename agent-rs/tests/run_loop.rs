//! The loop end to end: the real binary against the scripted model server over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn multi_turn_fix_makes_the_repo_test_pass() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let pristine = tempfile::tempdir().unwrap();
    buggy_python_repo(ws.path());
    copy_tree(ws.path(), pristine.path());

    let server = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "list_directory", "arguments": {}},
            {"name": "read_file_content", "arguments": {"file_path": "calc.py"}}
        ]},
        {"type": "tool_calls", "calls": [
            {"name": "edit_file_content", "arguments": {"file_path": "calc.py", "old_text": "return a - b", "new_text": "return a + b"}}
        ]},
        {"type": "tool_calls", "calls": [
            {"name": "run_shell_command", "arguments": {"command_string": "python3 test_calc.py"}}
        ]},
        {"type": "message", "content": "Fixed `add`: it subtracted. The test passes now."}
    ]}))
    .await;

    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["fix the failing test"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());

    let result = run.result();
    assert_eq!(result["status"], "completed");
    assert_eq!(result["turns"], 4);
    assert_eq!(
        result["final_message"],
        "Fixed `add`: it subtracted. The test passes now."
    );
    assert!(result["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let timing = &result["timing"];
    let (total, model, tools) = (
        timing["total_ms"].as_f64().unwrap(),
        timing["model_ms"].as_f64().unwrap(),
        timing["tools_ms"].as_f64().unwrap(),
    );
    assert!(
        model > 0.0 && tools > 0.0 && model + tools <= total,
        "{timing}"
    );

    // The model saw each tool's real output.
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let last = requests[3].body.to_string();
    assert!(
        last.contains("tests passed"),
        "shell output missing from the last request"
    );
    let second = requests[1].body.to_string();
    assert!(
        second.contains("return a - b"),
        "read_file_content output missing"
    );
    assert!(requests[0].body["tools"].as_array().unwrap().len() >= 8);

    // The repository's own test passes in the workspace and on a copy patched with the diff.
    let check = std::process::Command::new("python3")
        .arg("test_calc.py")
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert!(check.status.success());
    git_apply(pristine.path(), &run.diff());
    assert_eq!(tree_contents(pristine.path()), tree_contents(ws.path()));

    // Every artifact is there, and the trajectory tells the story in order.
    for name in [
        "diff.patch",
        "trajectory.jsonl",
        "result.json",
        "agent.log",
        "prompt.txt",
    ] {
        assert!(out.path().join(name).is_file(), "{name} missing");
    }
    let types = run.event_types();
    assert_eq!(types.first().unwrap(), "task_started");
    assert_eq!(types.last().unwrap(), "task_finished");
    assert_eq!(types.iter().filter(|t| *t == "model_response").count(), 4);
    assert_eq!(types.iter().filter(|t| *t == "tool_result").count(), 4);
    let seqs: Vec<u64> = run
        .events()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let log = std::fs::read_to_string(out.path().join("agent.log")).unwrap();
    assert!(
        log.contains("tool call") && log.contains("run finished"),
        "{log}"
    );
    let prompt = std::fs::read_to_string(out.path().join("prompt.txt")).unwrap();
    assert!(prompt.contains("fix the failing test") && prompt.contains("calc.py"));
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_run_together_and_writes_one_at_a_time() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    buggy_python_repo(ws.path());
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "read_file_content", "arguments": {"file_path": "calc.py"}},
            {"name": "search_code", "arguments": {"pattern": "def add"}},
            {"name": "run_shell_command", "arguments": {"command_string": "echo one > one.txt"}},
            {"name": "run_shell_command", "arguments": {"command_string": "cat one.txt"}}
        ]},
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["look around"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());

    let sequence: Vec<String> = run
        .events()
        .iter()
        .filter(|e| e["type"] == "tool_call" || e["type"] == "tool_result")
        .map(|e| {
            format!(
                "{}:{}",
                e["type"].as_str().unwrap(),
                e["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        sequence,
        [
            "tool_call:read_file_content",
            "tool_call:search_code",
            "tool_result:read_file_content",
            "tool_result:search_code",
            "tool_call:run_shell_command",
            "tool_result:run_shell_command",
            "tool_call:run_shell_command",
            "tool_result:run_shell_command",
        ]
    );
    // The second command saw the first one's file: writes ran in order.
    let request = server.requests()[1].body.clone();
    let tool_messages: Vec<&serde_json::Value> = request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_messages.len(), 4);
    assert!(
        tool_messages[3]["content"]
            .as_str()
            .unwrap()
            .contains("one")
    );
    assert_eq!(
        tool_messages[0]["tool_call_id"],
        request["messages"][2]["tool_calls"][0]["id"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_flag_streams_the_trajectory_on_stdout() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "message", "content": "nothing to do"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--json", "say hi"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let stdout_types: Vec<String> = run
        .stdout()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(stdout_types, run.event_types());
    assert_eq!(run.diff(), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_errors_go_back_to_the_model_and_the_run_goes_on() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "read_file_content", "arguments": {"file_path": "../../etc/passwd"}},
            {"name": "no_such_tool", "arguments": {}},
            {"name": "read_file_content", "arguments": "{not json"}
        ]},
        {"type": "message", "content": "gave up politely"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["try bad calls"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let request = server.requests()[1].body.to_string();
    assert!(request.contains("outside the workspace"), "{request}");
    assert!(request.contains("unknown tool"), "{request}");
    assert!(request.contains("not valid JSON"), "{request}");
    assert!(!request.contains("root:x:0:0"));
}
