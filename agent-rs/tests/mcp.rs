//! MCP servers configured for a run: their tools offered and called, and every way a
//! server can fail (does not start, hangs, dies mid-run) contained. The servers are the
//! small fixture in `tests/fixtures/mcp/`, over stdio and over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::*;

fn fixture() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mcp/mcp_fixture.py")
        .display()
        .to_string()
}

/// A config file with `servers` (TOML tables, without their header) under
/// `[mcp.servers.NAME]`, and `extra` lines for `[mcp]`.
fn mcp_config(dir: &Path, extra: &str, servers: &[(&str, String)]) -> String {
    let mut text = format!("[mcp]\n{extra}\n");
    for (name, table) in servers {
        text.push_str(&format!("[mcp.servers.{name}]\n{table}\n"));
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn stdio_server(mode: &str) -> String {
    format!(
        "command = \"python3\"\nargs = [{:?}, \"--mode\", {mode:?}]\n",
        fixture()
    )
}

fn call(name: &str, arguments: Value) -> Value {
    json!({"type": "tool_calls", "calls": [{"name": name, "arguments": arguments}]})
}

fn done() -> Value {
    json!({"type": "message", "content": "done"})
}

fn events_of(run: &Run, kind: &str) -> Vec<Value> {
    run.events()
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_tools_are_offered_and_a_call_reaches_it() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let config = mcp_config(cfg.path(), "", &[("fx", stdio_server("normal"))]);
    let server = server(json!({"model": "scripted", "steps": [
        call("fx__echo", json!({"text": "hello"})),
        call("fx__add", json!({"a": 2, "b": 3})),
        done()
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "use the tools"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());

    let prompt = std::fs::read_to_string(out.path().join("prompt.txt")).unwrap();
    assert!(prompt.contains("\"name\": \"fx__echo\""), "{prompt}");
    assert!(prompt.contains("- `fx`: 7 tool(s)"), "{prompt}");
    let requests = server.requests();
    let offered: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        offered.contains(&"fx__echo") && offered.contains(&"run_shell_command"),
        "{offered:?}"
    );

    let ready = events_of(&run, "mcp_server");
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["status"], "ready");
    let results = events_of(&run, "tool_result");
    assert_eq!(results[0]["name"], "fx__echo");
    assert_eq!(results[0]["output"], "echo: hello");
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[0]["details"]["mcp_tool"], "echo");
    assert_eq!(results[1]["output"], r#"{"sum":5}"#);
    // The model read the result back.
    assert!(
        server.requests()[1]
            .body
            .to_string()
            .contains("echo: hello")
    );
    // The server's stderr is in agent.log.
    let log = std::fs::read_to_string(out.path().join("agent.log")).unwrap();
    assert!(log.contains("fixture: stdio server up"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_server_is_reached_with_its_headers() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let mut http = tokio::process::Command::new("python3")
        .args([fixture().as_str(), "--http"])
        .env("MCP_FIXTURE_AUTH", "Bearer tok-http-0123456789")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(http.stdout.take().unwrap());
    let mut url = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut url)
        .await
        .unwrap();
    let config = mcp_config(
        cfg.path(),
        "",
        &[(
            "web",
            format!(
                "url = {:?}\nheaders = {{ Authorization = \"Bearer tok-http-0123456789\" }}\n",
                url.trim()
            ),
        )],
    );
    let server =
        server(json!({"model": "scripted", "steps": [call("web__fail", json!({})), done()]})).await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "try"],
        &[],
    )
    .await;
    http.kill().await.unwrap();
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let results = events_of(&run, "tool_result");
    assert_eq!(results[0]["output"], "this tool always fails");
    assert_eq!(results[0]["success"], false);
    // The header's token is a secret: never in an output file.
    for file in ["trajectory.jsonl", "prompt.txt", "agent.log", "result.json"] {
        let text = std::fs::read_to_string(out.path().join(file)).unwrap();
        assert!(!text.contains("tok-http-0123456789"), "{file}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_cannot_start_is_reported_and_the_run_goes_on() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let config = mcp_config(
        cfg.path(),
        "startup_timeout_secs = 5",
        &[
            ("broken", stdio_server("crash-start")),
            (
                "missing",
                "command = \"no-such-mcp-server-binary\"\n".to_string(),
            ),
            ("fx", stdio_server("normal")),
        ],
    );
    let server = server(json!({"model": "scripted", "steps": [call("fx__echo", json!({"text": "still here"})), done()]})).await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let servers = events_of(&run, "mcp_server");
    let status = |name: &str| {
        servers
            .iter()
            .find(|e| e["server"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(status("broken")["status"], "failed");
    assert!(
        status("broken")["error"]
            .as_str()
            .unwrap()
            .contains("initialize"),
        "{servers:?}"
    );
    assert_eq!(status("missing")["status"], "failed");
    assert!(
        status("missing")["error"]
            .as_str()
            .unwrap()
            .contains("cannot start"),
        "{servers:?}"
    );
    assert_eq!(status("fx")["status"], "ready");
    let system = server.requests()[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        system.contains("`broken`: unavailable in this run"),
        "{system}"
    );
    assert_eq!(
        events_of(&run, "tool_result")[0]["output"],
        "echo: still here"
    );
    let log = std::fs::read_to_string(out.path().join("agent.log")).unwrap();
    assert!(log.contains("fixture: refusing to start"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_hangs_at_startup_is_given_up_on_and_killed() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let pids = cfg.path().join("pids");
    let mut table = stdio_server("hang-start");
    table.push_str(&format!(
        "env = {{ MCP_FIXTURE_PIDS = {:?} }}\n",
        pids.display().to_string()
    ));
    // Long enough for Python to start on a loaded machine and record its pids.
    let config = mcp_config(cfg.path(), "startup_timeout_secs = 3", &[("stuck", table)]);
    let server = server(json!({"model": "scripted", "steps": [done()]})).await;
    let started = std::time::Instant::now();
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    let servers = events_of(&run, "mcp_server");
    assert_eq!(servers[0]["status"], "failed");
    assert!(
        servers[0]["error"]
            .as_str()
            .unwrap()
            .contains("startup timeout (3 s)"),
        "{servers:?}"
    );
    assert_processes_gone(&pids).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_hangs_times_out_and_the_server_keeps_serving() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let config = mcp_config(
        cfg.path(),
        "call_timeout_secs = 1",
        &[("fx", stdio_server("normal"))],
    );
    let server = server(json!({"model": "scripted", "steps": [
        call("fx__slow", json!({})), call("fx__echo", json!({"text": "after"})), done()
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let results = events_of(&run, "tool_result");
    assert_eq!(results[0]["success"], false);
    assert!(
        results[0]["output"]
            .as_str()
            .unwrap()
            .contains("did not answer within 1 s"),
        "{results:?}"
    );
    assert_eq!(results[1]["output"], "echo: after");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_dies_mid_run_is_reported_and_its_tools_fail_fast() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let config = mcp_config(cfg.path(), "", &[("fx", stdio_server("normal"))]);
    let server = server(json!({"model": "scripted", "steps": [
        call("fx__crash", json!({})),
        call("fx__echo", json!({"text": "anyone?"})),
        call("list_directory", json!({})),
        done()
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let results = events_of(&run, "tool_result");
    assert_eq!(results[0]["success"], false);
    assert!(
        results[0]["output"]
            .as_str()
            .unwrap()
            .contains("stopped during the run"),
        "{results:?}"
    );
    assert!(
        results[1]["output"]
            .as_str()
            .unwrap()
            .contains("is unavailable"),
        "{results:?}"
    );
    assert!(results[1]["duration_ms"].as_u64().unwrap() < 1000);
    assert_eq!(results[2]["success"], true, "built-in tools still work");
    let servers = events_of(&run, "mcp_server");
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(servers[1]["status"], "stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_processes_and_their_children_are_killed_with_the_run() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let pids = cfg.path().join("pids");
    let mut table = stdio_server("normal");
    table.push_str(&format!(
        "env = {{ MCP_FIXTURE_PIDS = {:?} }}\n",
        pids.display().to_string()
    ));
    let config = mcp_config(cfg.path(), "", &[("fx", table)]);
    let server = server(
        json!({"model": "scripted", "steps": [call("fx__echo", json!({"text": "x"})), done()]}),
    )
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_processes_gone(&pids).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_stay_out_of_servers_and_configured_secrets_out_of_outputs() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let mut table = stdio_server("normal");
    table.push_str("env = { MY_TOKEN = \"tok-mcp-secret-42abc\" }\n");
    let config = mcp_config(cfg.path(), "", &[("fx", table)]);
    let server =
        server(json!({"model": "scripted", "steps": [call("fx__env", json!({})), done()]})).await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "go"],
        &[
            ("OPENAI_API_KEY", "sk-agent-key-0123456789"),
            ("HARMLESS_SETTING", "1"),
        ],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let output = events_of(&run, "tool_result")[0]["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        output.contains("HARMLESS_SETTING") && output.contains("MY_TOKEN"),
        "{output}"
    );
    assert!(!output.contains("OPENAI_API_KEY"), "{output}");
    assert!(output.contains("MY_TOKEN=[REDACTED]"), "{output}");
    assert!(
        !server.requests()[1]
            .body
            .to_string()
            .contains("tok-mcp-secret-42abc")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_mcp_table_is_bad_input() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let config = mcp_config(cfg.path(), "", &[("two__parts", stdio_server("normal"))]);
    let run = run_agent(
        ws.path(),
        out.path(),
        "http://127.0.0.1:9/v1",
        &["--config", &config, "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 2, "stderr: {}", run.stderr());
    assert!(run.stderr().contains("two__parts"), "{}", run.stderr());
}

/// Every pid the fixture recorded (the server and the child it started) is gone.
async fn assert_processes_gone(pids: &Path) {
    let text = std::fs::read_to_string(pids).expect("the fixture recorded its pids");
    let pids: Vec<i32> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{text}");
    for _ in 0..50 {
        if pids.iter().all(|pid| !pid_alive(*pid)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "still running: {:?}",
        pids.iter().filter(|p| pid_alive(**p)).collect::<Vec<_>>()
    );
}
