//! Pieces of the `agent-rs job` tests: a stand-in object store serving presigned-style
//! URLs over real HTTP, workspace archives, and the binary run with a clean environment.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::support::AGENT;

/// The signature every test URL carries; it must never be shown.
pub const SIGNATURE: &str = "SECRETSIG";

/// Every output a job can upload.
pub const OUTPUTS: [&str; 5] = [
    "diff.patch",
    "trajectory.jsonl",
    "result.json",
    "agent.log",
    "prompt.txt",
];

#[derive(Default)]
struct StoreState {
    workspace: Option<Vec<u8>>,
    uploads: HashMap<String, Vec<u8>>,
    /// Every PUT: (file name, query string).
    put_log: Vec<(String, Option<String>)>,
    /// File name -> how many more PUTs answer 500 (u32::MAX: all of them).
    failures_left: HashMap<String, u32>,
    /// Until when the workspace GET answers 503 (an object store's outage).
    unavailable_until: Option<std::time::Instant>,
    /// Workspace GETs answered, whatever the answer.
    downloads: u32,
}

/// A stand-in object store: `GET /ws.tar.gz`, `PUT /up/{name}`.
#[derive(Clone)]
pub struct Store {
    addr: SocketAddr,
    state: Arc<Mutex<StoreState>>,
}

impl Store {
    /// Serves `workspace` (or 404 when `None`) on a free port of 127.0.0.1.
    pub async fn start(workspace: Option<Vec<u8>>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, workspace)
    }

    /// A store that is down (connections refused) for `outage`, then serves
    /// `workspace` on the same address.
    pub async fn start_after(outage: std::time::Duration, workspace: Option<Vec<u8>>) -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let state = Arc::new(Mutex::new(StoreState {
            workspace,
            ..StoreState::default()
        }));
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            tokio::time::sleep(outage).await;
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
            axum::serve(listener, Self::app(served)).await.unwrap();
        });
        Self { addr, state }
    }

    fn serve(listener: tokio::net::TcpListener, workspace: Option<Vec<u8>>) -> Self {
        let state = Arc::new(Mutex::new(StoreState {
            workspace,
            ..StoreState::default()
        }));
        let addr = listener.local_addr().unwrap();
        let app = Self::app(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    fn app(state: Arc<Mutex<StoreState>>) -> Router {
        Router::new()
            .route("/ws.tar.gz", get(serve_workspace))
            .route("/up/{name}", put(accept_upload))
            .layer(DefaultBodyLimit::max(64 << 20))
            .with_state(state)
    }

    /// The workspace GET answers 503 for `outage` from now.
    pub fn fail_downloads_for(&self, outage: std::time::Duration) {
        self.state.lock().unwrap().unavailable_until = Some(std::time::Instant::now() + outage);
    }

    /// Workspace GETs answered so far.
    pub fn downloads(&self) -> u32 {
        self.state.lock().unwrap().downloads
    }

    /// The next `times` PUTs of `name` answer 500.
    pub fn fail_uploads(&self, name: &str, times: u32) {
        self.state
            .lock()
            .unwrap()
            .failures_left
            .insert(name.to_string(), times);
    }

    pub fn workspace_url(&self) -> String {
        format!("http://{}/ws.tar.gz?X-Signature={SIGNATURE}", self.addr)
    }

    pub fn upload_url(&self, name: &str) -> String {
        format!("http://{}/up/{name}?X-Signature={SIGNATURE}", self.addr)
    }

    /// `AGENT_UPLOAD_URLS` for `names`.
    pub fn upload_urls(&self, names: &[&str]) -> String {
        let map: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .map(|name| (name.to_string(), self.upload_url(name).into()))
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    pub fn upload(&self, name: &str) -> Option<Vec<u8>> {
        self.state.lock().unwrap().uploads.get(name).cloned()
    }

    pub fn upload_text(&self, name: &str) -> String {
        String::from_utf8(
            self.upload(name)
                .unwrap_or_else(|| panic!("{name} was not uploaded")),
        )
        .unwrap()
    }

    pub fn uploaded_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.state.lock().unwrap().uploads.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn put_log(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().put_log.clone()
    }
}

async fn serve_workspace(State(state): State<Arc<Mutex<StoreState>>>) -> (StatusCode, Vec<u8>) {
    let mut state = state.lock().unwrap();
    state.downloads += 1;
    if state
        .unavailable_until
        .is_some_and(|until| std::time::Instant::now() < until)
    {
        return (StatusCode::SERVICE_UNAVAILABLE, b"SlowDown".to_vec());
    }
    match state.workspace.clone() {
        Some(bytes) => (StatusCode::OK, bytes),
        None => (StatusCode::NOT_FOUND, b"NoSuchKey".to_vec()),
    }
}

async fn accept_upload(
    State(state): State<Arc<Mutex<StoreState>>>,
    UrlPath(name): UrlPath<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> StatusCode {
    let mut state = state.lock().unwrap();
    state.put_log.push((name.clone(), query));
    if let Some(left) = state.failures_left.get_mut(&name)
        && *left > 0
    {
        if *left != u32::MAX {
            *left -= 1;
        }
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    state.uploads.insert(name, body.to_vec());
    StatusCode::OK
}

/// `dir` as a `.tar.gz`, paths relative to it.
pub fn tarball_of(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// A `.tar.gz` with one entry written byte by byte, so it can hold what `tar::Builder`
/// refuses to write (`..`, absolute paths, links out).
pub fn tarball_with_raw_entry(kind: tar::EntryType, name: &str, link: Option<&str>) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    let data: &[u8] = if kind == tar::EntryType::Regular {
        b"pwned\n"
    } else {
        b""
    };
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, data).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// A finished `agent-rs job`.
pub struct Job {
    pub output: Output,
}

impl Job {
    pub fn code(&self) -> i32 {
        self.output.status.code().expect("exited normally")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Stdout and stderr, for "never shown" checks.
    pub fn everything_shown(&self) -> String {
        format!("{}\n{}", self.stdout(), self.stderr())
    }
}

/// The settings of a job that would run, minus what each test changes.
pub fn job_env(store: &Store, model_url: &str) -> Vec<(String, String)> {
    [
        ("AGENT_TASK_ID", "task-42".to_string()),
        ("AGENT_TASK", "fix the failing test".to_string()),
        ("AGENT_WORKSPACE_URL", store.workspace_url()),
        ("AGENT_UPLOAD_URLS", store.upload_urls(&OUTPUTS)),
        ("OPENAI_BASE_URL", model_url.to_string()),
        ("AGENT_MODEL", "scripted".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// Sets `name` in `env`, replacing it when present.
pub fn set(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    env.retain(|(n, _)| n != name);
    env.push((name.to_string(), value.to_string()));
}

/// Removes `name` from `env`.
pub fn unset(env: &mut Vec<(String, String)>, name: &str) {
    env.retain(|(n, _)| n != name);
}

/// Runs `agent-rs job` with exactly `env` (plus PATH and HOME).
pub async fn run_job(env: &[(String, String)]) -> Job {
    run_job_via(tokio::process::Command::new(AGENT), env).await
}

/// Runs `agent-rs job` as the runners' containers run it: without the capabilities that
/// open another process's memory files (`CAP_SYS_PTRACE`, and for reading, on recent
/// kernels, `CAP_PERFMON` or `CAP_SYS_ADMIN`), which no container the runners start
/// has, root inside it or not. A test process holding any (root on a host) drops them
/// from the bounding set with util-linux's `setpriv`, for the job and its commands.
pub async fn run_job_without_ptrace(env: &[(String, String)]) -> Job {
    // CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON.
    const OPENERS: u64 = (1 << 19) | (1 << 21) | (1 << 38);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    if effective & OPENERS == 0 {
        return run_job(env).await;
    }
    let mut command = tokio::process::Command::new("setpriv");
    command.args([
        "--bounding-set=-sys_ptrace,-sys_admin,-perfmon",
        "--",
        AGENT,
    ]);
    run_job_via(command, env).await
}

async fn run_job_via(mut command: tokio::process::Command, env: &[(String, String)]) -> Job {
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .arg("job");
    for (name, value) in env {
        command.env(name, value);
    }
    Job {
        output: command.output().await.expect("agent-rs runs"),
    }
}
