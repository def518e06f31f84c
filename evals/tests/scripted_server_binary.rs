//! `evals scripted-server` as its own process, the way tests driving the `agent-rs`
//! binary use it: base URL on the first stdout line, control endpoints, SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use evals::scripted::RecordedRequest;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

/// A minimal valid chat request.
fn chat_request(stream: bool) -> Value {
    json!({
        "model": "scripted",
        "messages": [{"role": "user", "content": "fix the failing test"}],
        "stream": stream,
    })
}

async fn post_chat(base_url: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{base_url}/chat/completions"))
        .bearer_auth("sk-test-key")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Kills the server if a test fails before stopping it.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn evals_command(script: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_evals"));
    command
        .arg("scripted-server")
        .arg("--script")
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn binary_prints_its_base_url_serves_the_script_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    std::fs::write(
        &script,
        json!({"model": "from-file", "steps": [
            {"type": "message", "content": "hello from the script"},
            {"type": "message", "content": "unused"}
        ]})
        .to_string(),
    )
    .unwrap();
    let mut server = ServerProcess(evals_command(&script).spawn().unwrap());
    let mut first_line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let base_url = first_line.trim_end().to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
    assert!(base_url.ends_with("/v1"), "{base_url}");

    let answer: Value = post_chat(&base_url, &chat_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["model"], "from-file");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "hello from the script"
    );

    let root = base_url.trim_end_matches("/v1");
    let status: Value = client()
        .get(format!("{root}/_scripted/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status, json!({"consumed": 1, "total": 2}));
    let recorded: Vec<RecordedRequest> = client()
        .get(format!("{root}/_scripted/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].authorization.as_deref(),
        Some("Bearer sk-test-key")
    );
    assert_eq!(recorded[0].body, chat_request(false));

    let pid = Pid::from_raw(i32::try_from(server.0.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let status = server.0.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

#[test]
fn binary_refuses_a_malformed_script_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken.json");
    std::fs::write(&script, r#"{"steps": [{"type": "shout", "content": "x"}]}"#).unwrap();
    let output = evals_command(&script).output().unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no base URL may be printed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.json"), "{stderr}");
    assert!(stderr.contains("unknown variant `shout`"), "{stderr}");
}

#[test]
fn binary_refuses_a_missing_script_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = evals_command(&dir.path().join("absent.json"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("absent.json"), "{stderr}");
}
