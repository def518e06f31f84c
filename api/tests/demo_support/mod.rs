//! `api --demo` as a newcomer runs it: the binary with no model configured, its token and
//! address read from what it prints.

#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

pub const WAIT: Duration = Duration::from_secs(90);
const API_BIN: &str = env!("CARGO_BIN_EXE_api");

/// A running `api --demo`.
pub struct DemoApi {
    child: tokio::process::Child,
    pub base: String,
    /// The token the banner printed.
    pub token: String,
    pub http: reqwest::Client,
    log: Arc<Mutex<String>>,
}

/// Collects `stream`'s lines into `log` in the background.
fn keep_lines(stream: impl AsyncRead + Unpin + Send + 'static, log: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
}

/// The `api --demo` command with no model settings in its environment.
pub fn demo_command(agent: &Path, data: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(API_BIN);
    command
        .args(["--demo", "--listen", "127.0.0.1:0", "--agent-bin"])
        .arg(agent)
        .arg("--data-dir")
        .arg(data);
    for name in [
        "API_LISTEN",
        "API_DATA_DIR",
        "API_AGENT_BIN",
        "API_CONFIG",
        "API_LOG_FORMAT",
        "API_DEV_TOKEN",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "AGENT_MODEL",
    ] {
        command.env_remove(name);
    }
    command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

impl DemoApi {
    /// Starts `api --demo` and waits for its banner.
    pub async fn start(agent: &Path, data: &Path) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut child = demo_command(agent, data).spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        keep_lines(child.stderr.take().unwrap(), log.clone());
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut base, mut token) = (None, None);
        let banner = async {
            while base.is_none() || token.is_none() {
                let Some(line) = stdout.next_line().await.unwrap() else {
                    panic!(
                        "api --demo exited before its banner:\n{}",
                        log.lock().unwrap()
                    );
                };
                let line = line.trim();
                if let Some(url) = line.strip_prefix("open") {
                    base = Some(url.trim().trim_end_matches('/').to_string());
                } else if let Some(value) = line.strip_prefix("token") {
                    token = Some(value.trim().to_string());
                }
            }
        };
        tokio::time::timeout(WAIT, banner)
            .await
            .expect("api --demo printed no address and token");
        keep_lines(stdout.into_inner().into_inner(), log.clone());
        Self {
            child,
            base: base.unwrap(),
            token: token.unwrap(),
            http: reqwest::Client::new(),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// POST a multipart task with a zip; returns the new task's id.
    pub async fn submit_zip(&self, zip: Vec<u8>, description: &str) -> String {
        let form = reqwest::multipart::Form::new()
            .part(
                "zip_file",
                reqwest::multipart::Part::bytes(zip).file_name("repo.zip"),
            )
            .text("description", description.to_string());
        let response = self
            .http
            .post(self.url("/api/v1/tasks"))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn task(&self, id: &str) -> Value {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/tasks/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Polls until the task is finished; returns it.
    pub async fn wait_until_finished(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let task = self.task(id).await;
            if matches!(
                task["status"].as_str(),
                Some("COMPLETED" | "FAILED" | "CANCELLED")
            ) {
                return task;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("task {id} stuck at {task}\nserver log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An artifact's text, following the redirect to its signed URL.
    pub async fn artifact(&self, id: &str, name: &str) -> String {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/tasks/{id}/artifacts/{name}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name} of {id}");
        response.text().await.unwrap()
    }

    /// Stops the server (SIGTERM) and waits for it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
    }
}
