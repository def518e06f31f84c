//! The whole service as a user runs it: the `api` binary in its own process over a temp
//! data folder and config file, the real `agent-rs` beside it, and the scripted model
//! server in the test's process playing the model. Everything goes over real HTTP.
//!
//! Every wait is a poll with a deadline ([`eventually`], [`Api::wait_for_status`],
//! [`Api::follow_events`]); on a timeout the server's log is part of the failure message.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scripted_model::ScriptedServer;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::binaries::{agent_binary, api_binary};
use crate::sse::{SseEvent, SseReader};

pub const TOKEN: &str = "e2e-dev-token";
/// Long enough for a debug build on a busy two-core machine; only ever reached on failure.
pub const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// A temp folder holding the data directory and the config file.
pub struct Home {
    pub dir: TempDir,
}

impl Home {
    /// `config` is the TOML config file's text.
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Self { dir }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Every file under the data directory's blob folder.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        crate::files::files_under(&self.data().join("blobs"))
    }
}

/// A running `api` process.
pub struct Api {
    child: tokio::process::Child,
    /// `127.0.0.1:PORT`, as the server reported it.
    pub addr: String,
    pub base: String,
    pub http: reqwest::Client,
    log: Arc<Mutex<String>>,
}

impl Api {
    /// Starts `api` on `home` (its data dir and config file), listening on `listen`
    /// (`127.0.0.1:0` for any free port), with the model at `model`. Returns once the
    /// server logged its bound address.
    pub async fn start(home: &Home, listen: &str, model: &ScriptedServer) -> Self {
        Self::start_with(home, listen, model, &[]).await
    }

    /// As [`Api::start`], with `extra` arguments (`--role worker`...).
    pub async fn start_with(
        home: &Home,
        listen: &str,
        model: &ScriptedServer,
        extra: &[&str],
    ) -> Self {
        Self::start_env(home, listen, model, extra, &[]).await
    }

    /// As [`Api::start_with`], with `env` added to the process's environment (the
    /// object store's keys...).
    pub async fn start_env(
        home: &Home,
        listen: &str,
        model: &ScriptedServer,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Self {
        let bin = tokio::task::spawn_blocking(api_binary).await.unwrap();
        Self::launch(&bin, home, listen, model, extra, env).await
    }

    /// As [`Api::start_env`], running the `api` binary at `bin` (a test of the `api`
    /// crate passes its own, `CARGO_BIN_EXE_api`).
    pub async fn launch(
        bin: &Path,
        home: &Home,
        listen: &str,
        model: &ScriptedServer,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let agent = tokio::task::spawn_blocking(agent_binary).await.unwrap();
        let mut child = tokio::process::Command::new(bin)
            .args(extra)
            .args(["--listen", listen, "--agent-bin"])
            .arg(agent)
            .arg("--data-dir")
            .arg(home.data())
            .arg("--config")
            .arg(home.config())
            .env_remove("API_LISTEN")
            .env_remove("API_DATA_DIR")
            .env_remove("API_AGENT_BIN")
            .env_remove("API_CONFIG")
            .env_remove("API_LOG_FORMAT")
            .env_remove("API_ROLE")
            .env_remove("API_PUBLIC_URL")
            .env_remove("OPENAI_API_KEY")
            .env("API_DEV_TOKEN", TOKEN)
            .env("OPENAI_BASE_URL", model.base_url())
            .env("AGENT_MODEL", "scripted")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // The log line announcing the bound address is the readiness signal.
        let addr = tokio::time::timeout(WAIT, async {
            loop {
                let Some(line) = lines.next_line().await.unwrap() else {
                    panic!("api exited before listening:\n{}", log.lock().unwrap());
                };
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some((_, rest)) = line.split_once(" listening addr=") {
                    break rest.split_whitespace().next().unwrap().to_string();
                }
            }
        })
        .await
        .expect("api did not report its address");
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Self {
            child,
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the server logged so far (for failure messages).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().unwrap() as i32)
    }

    /// POST a multipart task with a zip; returns the response.
    pub async fn submit_zip(&self, zip: Vec<u8>, description: &str) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .part(
                "zip_file",
                reqwest::multipart::Part::bytes(zip).file_name("repo.zip"),
            )
            .text("description", description.to_string());
        self.http
            .post(self.url("/api/v1/tasks"))
            .bearer_auth(TOKEN)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// POST a JSON task; returns the response.
    pub async fn submit_json(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/tasks"))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A created task's id, after checking the create answered 201.
    pub async fn created_id(&self, response: reqwest::Response) -> String {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn task(&self, id: &str) -> Value {
        self.get_json(&format!("/api/v1/tasks/{id}")).await
    }

    /// An artifact's bytes, following the redirect to its signed URL.
    pub async fn artifact(&self, id: &str, name: &str) -> String {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/tasks/{id}/artifacts/{name}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name} of {id}");
        response.text().await.unwrap()
    }

    /// Polls the task until `done(status)`; returns the task.
    pub async fn wait_for_status(&self, id: &str, done: impl Fn(&str) -> bool) -> Value {
        self.wait_for_status_within(id, WAIT, done).await
    }

    /// As [`Api::wait_for_status`], within `bound`.
    pub async fn wait_for_status_within(
        &self,
        id: &str,
        bound: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let task = self.task(id).await;
            if done(task["status"].as_str().unwrap()) {
                return task;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("task {id} stuck at {task}\nserver log:\n{}", self.log());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The task's SSE stream from the start until the server ends it.
    pub async fn follow_events(&self, id: &str) -> Vec<SseEvent> {
        let mut reader = self.open_events(id).await;
        let mut events = Vec::new();
        let collect = async {
            while let Some(event) = reader.next().await {
                events.push(event);
            }
        };
        if tokio::time::timeout(WAIT, collect).await.is_err() {
            panic!(
                "the event stream of {id} did not end; got {events:?}\nserver log:\n{}",
                self.log()
            );
        }
        events
    }

    pub async fn open_events(&self, id: &str) -> SseReader {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/tasks/{id}/events")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        SseReader::new(response)
    }

    /// The task's events after `last_event_id`, as a reconnecting client asks for them,
    /// until the server ends the stream.
    pub async fn events_after(&self, id: &str, last_event_id: u64) -> Vec<SseEvent> {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/tasks/{id}/events")))
            .bearer_auth(TOKEN)
            .header("Last-Event-ID", last_event_id.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let reader = SseReader::new(response);
        match tokio::time::timeout(WAIT, reader.collect()).await {
            Ok(events) => events,
            Err(_) => panic!("the replayed stream of {id} did not end\n{}", self.log()),
        }
    }

    /// Sends `signal` and waits (bounded) for the process to exit.
    pub async fn stop_with(&mut self, signal: Signal) -> ExitStatus {
        self.stop_within(signal, WAIT).await
    }

    /// Sends `signal`; the process must exit within `bound`.
    pub async fn stop_within(&mut self, signal: Signal, bound: Duration) -> ExitStatus {
        kill(self.pid(), signal).unwrap();
        match tokio::time::timeout(bound, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("api did not exit on {signal}\n{}", self.log()),
        }
    }
}

/// Polls `check` until it returns `Some`, or `None` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    crate::procs::poll(timeout, POLL, check).await
}
