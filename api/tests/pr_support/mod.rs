//! A stand-in for the GitHub REST endpoints `octocrab` calls (repository lookup, create a
//! pull request, list a branch's open pull requests), with the errors the worker must
//! explain (401 bad credentials, 404 unknown repository, 422 "already exists"), and a
//! bare repository per `owner/name` to receive the pushes over `file://`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod smart_http;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// What the stand-in knows and saw.
#[derive(Debug, Default)]
pub struct GitHubState {
    /// The one token it accepts.
    pub token: String,
    /// `owner/name` of the repositories it knows.
    pub repos: BTreeSet<String>,
    /// `owner/name` -> the URL of a pull request already open for any branch: creating
    /// one there answers 422 "already exists", and the listing returns it.
    pub existing: BTreeMap<String, String>,
    /// Every request: method, path, the `Authorization` header.
    pub requests: Vec<(String, String, String)>,
    /// The bodies of the pull requests created, with their `owner/name`.
    pub created: Vec<(String, Value)>,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub state: Arc<Mutex<GitHubState>>,
    pub base: String,
}

impl FakeGitHub {
    pub async fn start(token: &str) -> Self {
        let state = Arc::new(Mutex::new(GitHubState {
            token: token.to_string(),
            ..GitHubState::default()
        }));
        let app = Router::new()
            .route("/repos/{owner}/{repo}", get(repo))
            .route(
                "/repos/{owner}/{repo}/pulls",
                get(list_pulls).post(create_pull),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { state, base }
    }

    pub fn know(&self, repo: &str) {
        self.state.lock().unwrap().repos.insert(repo.to_string());
    }

    pub fn with_open_pull_request(&self, repo: &str, url: &str) {
        self.state
            .lock()
            .unwrap()
            .existing
            .insert(repo.to_string(), url.to_string());
    }

    pub fn created(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().created.clone()
    }

    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.state.lock().unwrap().requests.clone()
    }
}

type Shared = State<Arc<Mutex<GitHubState>>>;

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

/// Records the request; the error to answer with when the token or repository is wrong.
fn check(
    state: &mut GitHubState,
    method: &str,
    path: String,
    headers: &HeaderMap,
    repo: &str,
) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let good = auth == format!("Bearer {}", state.token);
    state.requests.push((method.to_string(), path, auth));
    if !good {
        return Some(error(StatusCode::UNAUTHORIZED, "Bad credentials"));
    }
    if !state.repos.contains(repo) {
        return Some(error(StatusCode::NOT_FOUND, "Not Found"));
    }
    None
}

async fn repo(
    State(state): Shared,
    UrlPath((owner, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    let full = format!("{owner}/{name}");
    if let Some(refused) = check(&mut state, "GET", format!("/repos/{full}"), &headers, &full) {
        return refused;
    }
    Json(json!({
        "id": 1,
        "name": name,
        "full_name": full,
        "url": format!("https://api.example.invalid/repos/{full}"),
        "default_branch": "main",
    }))
    .into_response()
}

fn pull(full: &str, number: u64, url: &str, head: &str, base: &str) -> Value {
    json!({
        "id": number,
        "number": number,
        "url": format!("https://api.example.invalid/repos/{full}/pulls/{number}"),
        "html_url": url,
        "head": {"ref": head, "sha": "0000000000000000000000000000000000000000"},
        "base": {"ref": base, "sha": "0000000000000000000000000000000000000000"},
        "locked": false,
    })
}

async fn create_pull(
    State(state): Shared,
    UrlPath((owner, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut state = state.lock().unwrap();
    let full = format!("{owner}/{name}");
    let path = format!("/repos/{full}/pulls");
    if let Some(refused) = check(&mut state, "POST", path, &headers, &full) {
        return refused;
    }
    if state.existing.contains_key(&full) {
        let head = body["head"].as_str().unwrap_or_default();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "message": "Validation Failed",
                "errors": [{"resource": "PullRequest", "code": "custom",
                    "message": format!("A pull request already exists for {owner}:{head}.")}],
                "documentation_url": "https://docs.github.com/rest",
            })),
        )
            .into_response();
    }
    state.created.push((full.clone(), body.clone()));
    let number = state.created.len() as u64;
    let url = format!("https://github.example.invalid/{full}/pull/{number}");
    (
        StatusCode::CREATED,
        Json(pull(
            &full,
            number,
            &url,
            body["head"].as_str().unwrap_or_default(),
            body["base"].as_str().unwrap_or_default(),
        )),
    )
        .into_response()
}

async fn list_pulls(
    State(state): Shared,
    UrlPath((owner, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    let full = format!("{owner}/{name}");
    let path = format!("/repos/{full}/pulls");
    if let Some(refused) = check(&mut state, "GET", path, &headers, &full) {
        return refused;
    }
    let open: Vec<Value> = state
        .existing
        .get(&full)
        .map(|url| vec![pull(&full, 7, url, "agent/x", "main")])
        .unwrap_or_default();
    Json(Value::Array(open)).into_response()
}

/// Runs git with a neutral config.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@example.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// A bare repository `{root}/{owner}/{name}.git` whose `main` holds `files`; its
/// `file://` URL.
pub fn bare_repo(
    root: &Path,
    owner: &str,
    name: &str,
    files: &[(&str, &str)],
) -> (PathBuf, String) {
    let work = root.join(format!("{owner}-{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    for (path, content) in files {
        std::fs::write(work.join(path), content).unwrap();
    }
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "start"]);
    let bare = root.join(owner).join(format!("{name}.git"));
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    git(
        root,
        &[
            "clone",
            "--quiet",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let url = format!("file://{}", bare.display());
    (bare, url)
}

/// Every file under `dir` that holds `needle` (bytes), for "the token is nowhere".
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            {
                found.push(path);
            }
        }
    }
    found
}
