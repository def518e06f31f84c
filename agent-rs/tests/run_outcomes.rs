//! Exit codes, limits, retries and secret handling of `agent-rs run`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::*;

fn shell_step(command: &str) -> serde_json::Value {
    json!({"type": "tool_calls", "calls": [
        {"name": "run_shell_command", "arguments": {"command_string": command}}
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn max_turns_stops_with_exit_3_and_keeps_the_diff() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        shell_step("echo 1 >> counter.txt"),
        shell_step("echo 2 >> counter.txt"),
        shell_step("echo 3 >> counter.txt"),
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--max-turns", "2", "count"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 3, "stderr: {}", run.stderr());
    let result = run.result();
    assert_eq!(result["status"], "limit_reached");
    assert_eq!(result["limit"], "max_turns");
    assert_eq!(result["turns"], 2);
    assert_eq!(server.requests().len(), 2, "a third request was made");
    assert!(run.diff().contains("+1\n+2\n"), "{}", run.diff());
}

#[tokio::test(flavor = "multi_thread")]
async fn max_tokens_stops_with_exit_3() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let heavy = |cmd: &str| {
        let mut step = shell_step(cmd);
        step["usage"] = json!({"prompt_tokens": 600, "completion_tokens": 100});
        step
    };
    let server = server(json!({"model": "scripted", "steps": [
        heavy("true"), heavy("true"), heavy("true"), {"type": "message", "content": "x"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--max-tokens", "1000", "spend"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 3, "stderr: {}", run.stderr());
    let result = run.result();
    assert_eq!(result["limit"], "max_tokens");
    assert_eq!(result["turns"], 2);
    assert_eq!(result["usage"]["total_tokens"], 1400);
}

#[tokio::test(flavor = "multi_thread")]
async fn wall_time_limit_kills_a_long_command_with_exit_3() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        shell_step("echo started > started.txt; sleep 600")
    ]}))
    .await;
    let started = std::time::Instant::now();
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--timeout", "2", "hang"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 3, "stderr: {}", run.stderr());
    assert_eq!(run.result()["limit"], "timeout");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the run did not stop at its limit"
    );
    assert!(
        run.diff().contains("started.txt"),
        "diff so far not written: {}",
        run.diff()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_is_retried_after_the_server_says() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "error", "status": 429, "retry_after_secs": 1},
        {"type": "error", "status": 500},
        {"type": "cut_stream"},
        {"type": "message", "content": "made it"}
    ]}))
    .await;
    let config = quick_retry_config(cfg.path(), 5);
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", config.to_str().unwrap(), "persist"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_eq!(run.result()["final_message"], "made it");
    assert_eq!(run.result()["turns"], 1);
    let retries: Vec<serde_json::Value> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "model_retry")
        .collect();
    assert_eq!(retries.len(), 3, "{retries:?}");
    assert!(
        retries[0]["wait_ms"].as_u64().unwrap() >= 1000,
        "Retry-After not honoured: {:?}",
        retries[0]
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_retries_exit_4_with_the_reason() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "error", "status": 503}, {"type": "error", "status": 503}, {"type": "error", "status": 503}
    ]}))
    .await;
    let config = quick_retry_config(cfg.path(), 2);
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", config.to_str().unwrap(), "fail"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 4, "stderr: {}", run.stderr());
    let result = run.result();
    assert_eq!(result["status"], "model_error");
    assert!(
        result["error"].as_str().unwrap().contains("503"),
        "{result}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_model_exits_4() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let config = quick_retry_config(cfg.path(), 1);
    let run = run_agent(
        ws.path(),
        out.path(),
        &url,
        &["--config", config.to_str().unwrap(), "x"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 4, "stderr: {}", run.stderr());
    assert_eq!(run.result()["status"], "model_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_exit_4_without_retrying() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "error", "status": 401}, {"type": "message", "content": "never"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["x"],
        &[("OPENAI_API_KEY", "sk-wrong-key-000")],
    )
    .await;
    assert_eq!(run.code(), 4, "stderr: {}", run.stderr());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_before_any_model_call() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server =
        server(json!({"model": "scripted", "steps": [{"type": "message", "content": "x"}]})).await;
    let missing = ws.path().join("missing");
    let inside = ws.path().join("out");
    let cases: Vec<(std::path::PathBuf, std::path::PathBuf, Vec<&str>)> = vec![
        (missing.clone(), out.path().to_path_buf(), vec!["task"]),
        (ws.path().to_path_buf(), inside.clone(), vec!["task"]),
        (
            ws.path().to_path_buf(),
            out.path().to_path_buf(),
            vec!["   "],
        ),
        (
            ws.path().to_path_buf(),
            out.path().to_path_buf(),
            vec!["--target-file", "../x", "task"],
        ),
        (
            ws.path().to_path_buf(),
            out.path().to_path_buf(),
            vec!["--max-turns", "nope", "task"],
        ),
    ];
    for (dir, output, args) in cases {
        let run = run_agent(&dir, &output, &server.base_url(), &args, &[]).await;
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
        assert!(
            run.stderr().contains("agent-rs") || run.stderr().contains("error"),
            "{}",
            run.stderr()
        );
    }
    assert_eq!(server.requests().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unwritable_output_exits_1() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server =
        server(json!({"model": "scripted", "steps": [{"type": "message", "content": "x"}]})).await;
    // result.json exists as a directory: the run happens, but its result cannot be written.
    std::fs::create_dir_all(out.path().join("result.json/blocker")).unwrap();
    let run = run_agent(ws.path(), out.path(), &server.base_url(), &["x"], &[]).await;
    assert_eq!(run.code(), 1, "stderr: {}", run.stderr());
    assert!(run.stderr().contains("result.json"), "{}", run.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_outputs_events_or_tools_and_the_patch_says_it_holds_one() {
    const KEY: &str = "sk-test-SECRET-9f8e7d6c5b4a";
    const TOKEN: &str = "ghp_SECRETTOKEN1234567890";
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("leak.txt"), format!("key={KEY}\n")).unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "run_shell_command", "arguments": {"command_string": "env; echo \"k=$OPENAI_API_KEY t=$GITHUB_TOKEN\""}},
            {"name": "read_file_content", "arguments": {"file_path": "leak.txt"}}
        ]},
        {"type": "tool_calls", "calls": [
            {"name": "run_shell_command", "arguments": {"command_string": "cat leak.txt > copy.txt"}}
        ]},
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--json", "leak things"],
        &[("OPENAI_API_KEY", KEY), ("GITHUB_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());

    // The key went where it belongs: the Authorization header.
    let requests = server.requests();
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    // ...and nowhere else: not in what the model saw, not in any output file, not on stdout/stderr.
    for request in &requests {
        let body = request.body.to_string();
        assert!(
            !body.contains(KEY) && !body.contains(TOKEN),
            "secret sent to the model"
        );
        assert!(
            !body.contains("GITHUB_TOKEN="),
            "secret variable reached the shell"
        );
    }
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.ends_with("diff.patch") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(
            !text.contains(KEY) && !text.contains(TOKEN),
            "secret in {}",
            path.display()
        );
    }
    assert!(!run.stdout().contains(KEY) && !run.stderr().contains(KEY));
    // The patch is the workspace's change as it is (a rewritten patch would not apply):
    // the copy the agent made holds the key, and the run says so without showing it.
    assert!(
        run.diff().contains(&format!("+key={KEY}")),
        "{}",
        run.diff()
    );
    assert_eq!(
        run.result()["diff_secrets"],
        json!(["[REDACTED:OPENAI_API_KEY]"])
    );
    assert!(
        run.stderr()
            .contains("diff.patch holds secrets ([REDACTED:OPENAI_API_KEY])"),
        "{}",
        run.stderr()
    );
}
