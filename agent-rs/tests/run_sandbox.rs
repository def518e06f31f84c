//! `agent-rs run` with its sandbox and its setup phase: the mode in force is recorded,
//! the setup runs first with what the agent phase does not get, and a failing setup
//! fails the run without the model.

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
async fn the_sandbox_in_force_is_in_the_result_and_the_trajectory() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        shell_step("touch /usr/escaped-by-agent; echo made > made.txt"),
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(ws.path(), out.path(), &server.base_url(), &["try"], &[]).await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let result = run.result();
    assert_eq!(result["sandbox"]["mode"], "bwrap", "{result}");
    assert_eq!(result["sandbox"]["network"], "off", "{result}");
    let started = &run.events()[0];
    assert_eq!(started["type"], "task_started");
    assert_eq!(started["sandbox"], result["sandbox"]);
    // The model read why the write outside failed.
    let seen = server.requests()[1].body.to_string();
    assert!(seen.contains("Read-only file system"), "{seen}");
    assert!(seen.contains("only inside the workspace"), "{seen}");
    assert!(!std::path::Path::new("/usr/escaped-by-agent").exists());
    assert!(run.diff().contains("+made"), "{}", run.diff());
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_off_and_network_on_are_recorded_as_asked() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let first = server(json!({"model": "scripted", "steps": [
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &first.base_url(),
        &["--sandbox", "off", "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_eq!(run.result()["sandbox"]["mode"], "off");

    let out = tempfile::tempdir().unwrap();
    let second = server(json!({"model": "scripted", "steps": [
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &second.base_url(),
        &["go"],
        &[("AGENT_NETWORK", "on")],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_eq!(run.result()["sandbox"]["network"], "on");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_sandbox_mode_is_bad_input() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = run_agent(
        ws.path(),
        out.path(),
        "http://127.0.0.1:9/v1",
        &["--sandbox", "docker", "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 2, "stderr: {}", run.stderr());
    assert!(
        run.stderr().contains("auto, bwrap, landlock or off"),
        "{}",
        run.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_setup_runs_first_with_its_secret_and_its_output_is_not_the_diff() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        shell_step("cat deps.txt; echo \"token=[$REGISTRY_TOKEN]\"; echo change > work.txt"),
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &[
            "--setup",
            "echo \"installed with ${REGISTRY_TOKEN:-none}\" > deps.txt; echo setting up",
            "--setup-env",
            "REGISTRY_TOKEN",
            "work",
        ],
        &[("REGISTRY_TOKEN", "tok-setup-only-1234")],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    // The setup had the token...
    assert_eq!(
        std::fs::read_to_string(ws.path().join("deps.txt")).unwrap(),
        "installed with tok-setup-only-1234\n"
    );
    // ...the agent's command did not, and what the setup made is not in the diff.
    let seen = server.requests()[1].body.to_string();
    assert!(seen.contains("token=[]"), "{seen}");
    assert!(!seen.contains("tok-setup-only-1234"));
    let diff = run.diff();
    assert!(
        diff.contains("work.txt") && !diff.contains("deps.txt"),
        "{diff}"
    );
    let log = std::fs::read_to_string(out.path().join("setup.log")).unwrap();
    assert!(log.contains("setting up"), "{log}");
    assert!(!log.contains("tok-setup-only-1234"), "{log}");
    let setup = run
        .events()
        .into_iter()
        .find(|e| e["type"] == "setup_finished")
        .unwrap();
    assert_eq!(setup["success"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_setup_fails_the_run_with_its_log_tail_and_no_model_call() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "message", "content": "never"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &[
            "--setup",
            "echo resolving; echo 'E: package frobnicate not found' >&2; exit 7",
            "work",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code(), 1, "stderr: {}", run.stderr());
    assert!(server.requests().is_empty(), "the model was called");
    let result = run.result();
    assert_eq!(result["status"], "error");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("setup failed (exit code 7)"), "{error}");
    assert!(error.contains("package frobnicate not found"), "{error}");
    let events = run.events();
    assert_eq!(events.last().unwrap()["type"], "task_finished");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "setup_finished" && e["exit_code"] == 7)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_setup_has_the_network_the_agent_phase_does_not() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = stream.write_all(b"reachable\n").await;
        }
    });
    let reach = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && head -1 <&3");
    let server = server(json!({"model": "scripted", "steps": [
        shell_step(&reach),
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--setup", &format!("{reach} > fetched.txt"), "work"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_eq!(
        std::fs::read_to_string(ws.path().join("fetched.txt")).unwrap(),
        "reachable\n"
    );
    // The agent's command is in a network namespace of its own: the host's loopback
    // port is not there.
    let seen = server.requests()[1].body.to_string();
    assert!(!seen.contains("reachable\\n"), "{seen}");
    assert!(seen.contains("Connection refused"), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn landlock_can_be_forced_and_is_recorded() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        shell_step("touch /usr/escaped-by-agent; echo made > made.txt"),
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--sandbox", "landlock", "try"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let result = run.result();
    assert_eq!(result["sandbox"]["mode"], "landlock", "{result}");
    assert_eq!(result["sandbox"]["network"], "off", "{result}");
    let seen = server.requests()[1].body.to_string();
    assert!(seen.contains("Permission denied"), "{seen}");
    assert!(!std::path::Path::new("/usr/escaped-by-agent").exists());
    assert!(run.diff().contains("+made"), "{}", run.diff());
}

/// Unsandboxed, a process that left its group and cleared its environment carries no
/// mark for the shell tool to find; the run still kills it before it exits.
#[tokio::test(flavor = "multi_thread")]
async fn an_unmarked_escaped_process_does_not_outlive_an_unsandboxed_run() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        // The command waits until the process is `sleep` (out of the group), or the
        // group kill at its end could catch it still in `env`.
        shell_step(
            "env -i PATH=\"$PATH\" setsid sleep 1000 >/dev/null 2>&1 & echo $! > escaped.pid; \
             until [ \"$(cat /proc/$!/comm)\" = sleep ]; do sleep 0.01; done"
        ),
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--sandbox", "off", "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let pid: i32 = std::fs::read_to_string(ws.path().join("escaped.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let survived = !gone_soon(pid);
    assert!(!survived, "the escaped process outlived `agent-rs run`");
}
