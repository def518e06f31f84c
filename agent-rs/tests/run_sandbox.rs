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
        shell_step("cat deps.txt; echo \"token=[$REGISTRY_TOKEN]\"; echo \"in-env=$(env | grep -c REGISTRY_TOKEN)\"; echo change > work.txt"),
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &[
            "--setup",
            "echo \"installed with ${REGISTRY_TOKEN:-none}\" > deps.txt; echo setting up; echo \"token is $REGISTRY_TOKEN\"",
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
    assert!(seen.contains("in-env=0"), "{seen}");
    assert!(!seen.contains("tok-setup-only-1234"));
    // Nor do the trajectory and the result hold it (the setup's output there is the log's
    // redacted tail).
    let trajectory = std::fs::read_to_string(out.path().join("trajectory.jsonl")).unwrap();
    assert!(trajectory.contains("installed with"), "{trajectory}");
    assert!(!trajectory.contains("tok-setup-only-1234"), "{trajectory}");
    assert!(!run.result().to_string().contains("tok-setup-only-1234"));
    let diff = run.diff();
    assert!(
        diff.contains("work.txt") && !diff.contains("deps.txt"),
        "{diff}"
    );
    let log = std::fs::read_to_string(out.path().join("setup.log")).unwrap();
    assert!(log.contains("setting up"), "{log}");
    assert!(log.contains("token is "), "{log}");
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

/// A plain-HTTP server on loopback answering every request with `hello from svc`; its
/// port.
fn hello_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nhello from svc",
            );
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_list_lets_commands_reach_its_hosts_only_and_says_why_others_are_refused() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let port = hello_server();
    // `svc.test` is pinned to the loopback server; `localhost` is listed but resolves to
    // a loopback address, which the proxy never connects to unless pinned.
    let config = cfg.path().join("agent.toml");
    std::fs::write(
        &config,
        "[tools.sandbox.host_addresses]\n\"svc.test\" = \"127.0.0.1\"\n",
    )
    .unwrap();
    let script = format!(
        "echo \"A:$(curl -sS http://svc.test:{port}/hi)\"; \
         echo \"B:$(curl -sS http://other.test:{port}/)\"; \
         echo \"C:$(curl -sS http://localhost:{port}/)\"; \
         curl -sS https://other.test/ 2>&1 | sed 's/^/D:/'; \
         curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:{port}/ 2>&1 | sed 's/^/E:/'"
    );
    let server = server(json!({"model": "scripted", "steps": [
        shell_step(&script),
        {"type": "message", "content": "done"}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--network",
            "allow=svc.test,localhost",
            "fetch",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let seen = server.requests()[1].body.to_string();
    assert!(seen.contains("A:hello from svc"), "{seen}");
    assert!(
        seen.contains("B:the sandbox lets commands reach only the hosts this run allows (svc.test, localhost); other.test"),
        "{seen}"
    );
    assert!(
        seen.contains("C:localhost resolves to 127.0.0.1, a loopback address"),
        "{seen}"
    );
    assert!(
        seen.contains("D:curl: (56)") && seen.contains("403"),
        "{seen}"
    );
    // A client that ignores the proxy finds no network at all.
    assert!(seen.contains("E:curl: (7)"), "{seen}");
    assert!(!seen.contains("E:hello"), "{seen}");

    let result = run.result();
    assert_eq!(result["sandbox"]["mode"], "bwrap", "{result}");
    assert_eq!(result["sandbox"]["network"], "allow", "{result}");
    assert_eq!(
        result["sandbox"]["allowed_hosts"],
        json!(["svc.test", "localhost"])
    );
    let started = &run.events()[0];
    assert_eq!(started["sandbox"], result["sandbox"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_list_without_a_sandbox_is_refused_before_the_model() {
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
        &["--sandbox", "off", "--network", "allow=pypi.org", "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 2, "stderr: {}", run.stderr());
    assert!(run.stderr().contains("--sandbox off"), "{}", run.stderr());
    assert!(server.requests().is_empty());
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
