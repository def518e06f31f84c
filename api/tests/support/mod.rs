//! A real server on 127.0.0.1:0 over the embedded services (SQLite in a temp dir,
//! in-process queue, memory cache, local blob folder), with two owners' tokens.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use api::{ApiConfig, ApiServices, AppState};
use futures_util::StreamExt;
use orchestrator::blob::LocalBlobStore;
use orchestrator::cache::MemoryStatusCache;
use orchestrator::queue::InProcessQueue;
use orchestrator::store::SqliteTaskStore;
use orchestrator::{OrchestratorConfig, Services, Task, TaskFilter, TaskStore};
use secrecy::SecretSlice;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";

/// The smallest valid zip: an empty archive's end record.
pub const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

pub struct Harness {
    pub base: String,
    /// Follows no redirects, so 302s can be checked.
    pub http: reqwest::Client,
    pub store: Arc<SqliteTaskStore>,
    pub cache: Arc<MemoryStatusCache>,
    pub queue: Arc<InProcessQueue>,
    pub blobs: Arc<LocalBlobStore>,
    pub data: TempDir,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub fn test_config() -> ApiConfig {
    ApiConfig {
        multipart_body_limit: 1024 * 1024,
        blob_put_limit: 1024 * 1024,
        ..ApiConfig::default()
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(test_config(), None).await
    }

    /// `clock` replaces the wall clock the blob route checks expiries against.
    pub async fn start_with(config: ApiConfig, clock: Option<api::state::Clock>) -> Self {
        Self::start_wrapped(config, clock, |_| {}).await
    }

    /// As [`Harness::start_with`], with `wrap` replacing some of the API's parts (by
    /// fault-injecting wrappers, say).
    pub async fn start_wrapped(
        config: ApiConfig,
        clock: Option<api::state::Clock>,
        wrap: impl FnOnce(&mut ApiServices),
    ) -> Self {
        Self::start_shaped(config, clock, wrap, |_| {}).await
    }

    /// As [`Harness::start_wrapped`], with `shape` changing the state before it serves
    /// (readiness checks of another role, say).
    pub async fn start_shaped(
        config: ApiConfig,
        clock: Option<api::state::Clock>,
        wrap: impl FnOnce(&mut ApiServices),
        shape: impl FnOnce(&mut AppState),
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // The same constructor the binary uses; no worker runs here.
        let orchestrator_config = OrchestratorConfig {
            data_dir: data.path().to_path_buf(),
            ..OrchestratorConfig::default()
        };
        let (orchestrator, parts) =
            Services::embedded(orchestrator_config, &base, SecretSlice::from(vec![7u8; 32]))
                .await
                .unwrap();
        let store = Arc::new(parts.store.clone());
        let cache = Arc::new(parts.cache.clone());
        let queue = Arc::new(parts.queue.clone());
        let blobs = parts.blobs.clone();
        api::auth::register_token(store.as_ref(), "alice", ALICE)
            .await
            .unwrap();
        api::auth::register_token(store.as_ref(), "bob", BOB)
            .await
            .unwrap();
        let mut services = ApiServices::from_services(&orchestrator, Some(blobs.clone()));
        wrap(&mut services);
        let shutdown = CancellationToken::new();
        let mut state = AppState::new(services, config, shutdown.clone()).unwrap();
        if let Some(clock) = clock {
            state.clock = clock;
        }
        shape(&mut state);
        let stop = shutdown.clone();
        let server = tokio::spawn(api::serve(listener, Arc::new(state), async move {
            stop.cancelled().await
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base,
            http,
            store,
            cache,
            queue,
            blobs,
            data,
            shutdown,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn tasks_of(&self, owner: &str) -> Vec<Task> {
        self.store
            .list(TaskFilter {
                owner: Some(owner.into()),
                status: None,
                limit: 100,
                cursor: None,
            })
            .await
            .unwrap()
            .tasks
    }

    /// Every file in the blob folder.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(&self.data.path().join("blobs"), &mut found);
        found
    }

    /// Checks a rejected request left nothing behind.
    pub async fn assert_nothing_stored(&self) {
        assert!(
            self.tasks_of("alice").await.is_empty(),
            "a task row was left"
        );
        assert!(self.queue.is_empty(), "a message was queued");
        assert_eq!(self.blob_files(), Vec::<PathBuf>::new(), "a blob was left");
    }

    /// POST a JSON task as alice.
    pub async fn create_json(&self, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/tasks"))
            .bearer_auth(ALICE)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a git task as alice; returns its id.
    pub async fn create_git_task(&self) -> String {
        let response = self
            .create_json(serde_json::json!({
                "git_url": "https://140.82.112.3/org/repo.git",
                "description": "fix the failing test",
            }))
            .await;
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_string()
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// The `{"error": {"code", "message"}}` of a failed response, checked for its status.
pub async fn expect_error(response: reqwest::Response, status: u16) -> (String, String) {
    assert_eq!(response.status(), status);
    let body: serde_json::Value = response.json().await.unwrap();
    (
        body["error"]["code"].as_str().unwrap().to_string(),
        body["error"]["message"].as_str().unwrap().to_string(),
    )
}

/// Reads Server-Sent Events off a response body.
pub struct SseReader {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub data: serde_json::Value,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            stream: response.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().to_string());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some(SseEvent {
                    id,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = self.stream.next().await?.unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    pub async fn collect(mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}
