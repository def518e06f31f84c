//! Shared pieces of the agent's integration tests: a scripted model server, the real
//! `agent-rs` binary, and small repositories to work on.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use scripted_model::{Script, ScriptedServer};

pub const AGENT: &str = env!("CARGO_BIN_EXE_agent-rs");

/// Starts a scripted model server from a JSON script.
pub async fn server(script: serde_json::Value) -> ScriptedServer {
    let script = Script::from_json(&script.to_string()).expect("script parses");
    ScriptedServer::start(script).await.expect("server starts")
}

/// A finished `agent-rs run`.
pub struct Run {
    pub output: Output,
    pub out_dir: PathBuf,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().expect("exited normally")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn result(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.out_dir.join("result.json"))
            .unwrap_or_else(|e| panic!("result.json: {e}\nstderr: {}", self.stderr()));
        serde_json::from_str(&text).unwrap()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.out_dir.join("trajectory.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    pub fn event_types(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn diff(&self) -> String {
        std::fs::read_to_string(self.out_dir.join("diff.patch")).unwrap()
    }
}

/// Runs the real binary against `base_url` with a clean environment (no stray keys).
pub async fn run_agent(
    dir: &Path,
    out_dir: &Path,
    base_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command = tokio::process::Command::new(AGENT);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("OPENAI_BASE_URL", base_url)
        .env("AGENT_MODEL", "scripted")
        .arg("run")
        .arg("--dir")
        .arg(dir)
        .arg("--output")
        .arg(out_dir)
        .args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.expect("agent-rs runs");
    Run {
        output,
        out_dir: out_dir.to_path_buf(),
    }
}

/// A config file with quick retries, for tests that exercise them.
pub fn quick_retry_config(dir: &Path, max_retries: u32) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[model]\nmax_retries = {max_retries}\nretry_base_delay_ms = 10\nmax_retry_elapsed_secs = 20\nrequest_timeout_secs = 10\n"
        ),
    )
    .unwrap();
    path
}

/// A small Python project with a failing test: `add` subtracts.
pub fn buggy_python_repo(dir: &Path) {
    std::fs::write(dir.join("calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
    std::fs::write(
        dir.join("test_calc.py"),
        "from calc import add\n\nassert add(2, 3) == 5, 'add is broken'\nprint('tests passed')\n",
    )
    .unwrap();
    std::fs::write(dir.join("README.md"), "# calc\n").unwrap();
}

/// Copies a tree (files only; no symlinks in fixtures).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `git apply` of `patch` in `dir`; panics with git's message on failure.
pub fn git_apply(dir: &Path, patch: &str) {
    let patch_file = dir.join("..").join(format!(
        "{}.patch",
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&patch_file, patch).unwrap();
    let out = std::process::Command::new("git")
        .arg("apply")
        .arg("--whitespace=nowarn")
        .arg(&patch_file)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git apply failed: {}\n{patch}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `git` in `dir`, asserting success.
pub fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `dir` (relative path -> bytes), `.git` excluded.
pub fn tree_contents(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    collect(dir, dir, &mut files);
    files
}

fn collect(root: &Path, dir: &Path, files: &mut std::collections::BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.insert(rel, std::fs::read(&path).unwrap());
        }
    }
}

/// Whether process `pid` is gone within 3 s (a zombie, dead and only waiting to be
/// reaped, counts as gone: SIGKILL is not instant). One still alive then is killed, so
/// a failing test leaves nothing behind.
pub fn gone_soon(pid: i32) -> bool {
    let is_gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !is_gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let gone = is_gone();
    if !gone {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    gone
}
