//! Shared pieces of the harness tests: the real `evals` and `agent-rs` programs, and
//! small suites written into temporary folders.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{Value, json};

pub const EVALS: &str = env!("CARGO_BIN_EXE_evals");

/// The `agent-rs` binary next to `evals`, built once per test binary (a no-op when the
/// workspace was built as a whole).
pub fn agent_bin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bin_dir = Path::new(EVALS).parent().unwrap();
        let profile_dir = bin_dir.file_name().unwrap().to_string_lossy().into_owned();
        let target_dir = bin_dir.parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "-q", "-p", "agent-rs", "--bin", "agent-rs"])
            .env("CARGO_TARGET_DIR", target_dir);
        if profile_dir == "release" {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p agent-rs failed");
        let agent = bin_dir.join("agent-rs");
        assert!(agent.is_file(), "no agent-rs at {}", agent.display());
        agent
    })
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A suite folder under `root` with its `suite.toml`.
pub fn suite(root: &Path, suite_toml: &str) -> PathBuf {
    let dir = root.join("suite");
    write(&dir.join("suite.toml"), suite_toml);
    dir
}

/// A task folder with `task.toml`, optional `script.json` and `repo/` files.
pub fn task(
    suite: &Path,
    name: &str,
    task_toml: &str,
    script: Option<Value>,
    repo: &[(&str, &str)],
) {
    let dir = suite.join(name);
    write(&dir.join("task.toml"), task_toml);
    if let Some(script) = script {
        write(&dir.join("script.json"), &script.to_string());
    }
    for (path, text) in repo {
        write(&dir.join("repo").join(path), text);
    }
}

pub fn shell_step(command: &str) -> Value {
    json!({"type": "tool_calls", "calls": [
        {"name": "run_shell_command", "arguments": {"command_string": command}}
    ]})
}

pub fn edit_step(file: &str, old: &str, new: &str) -> Value {
    json!({"type": "tool_calls",
        "usage": {"prompt_tokens": 100, "completion_tokens": 20},
        "calls": [{"name": "edit_file_content",
            "arguments": {"file_path": file, "old_text": old, "new_text": new}}]})
}

pub fn done_step() -> Value {
    json!({"type": "message", "content": "Done.",
        "usage": {"prompt_tokens": 150, "completion_tokens": 5}})
}

/// `evals ARGS` with a clean model environment.
pub fn evals(args: &[&str]) -> Output {
    Command::new(EVALS)
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("AGENT_MODEL")
        .env_remove("AGENT_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("evals runs")
}

/// `evals run --suite SUITE --out OUT --agent-bin AGENT EXTRA...`.
pub fn run_suite(suite: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--suite",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let agent = agent_bin().to_str().unwrap();
    if !extra.contains(&"--agent-bin") {
        args.extend(["--agent-bin", agent]);
    }
    args.extend(extra);
    evals(&args)
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every attempt of `report.json`, flattened.
pub fn attempts(report: &Value) -> Vec<Value> {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|task| task["attempts"].as_array().unwrap().clone())
        .collect()
}

/// The attempt of `task` (first attempt) in `report.json`.
pub fn attempt_of(report: &Value, task: &str) -> Value {
    attempts(report)
        .into_iter()
        .find(|attempt| attempt["task_id"] == task)
        .unwrap_or_else(|| panic!("no attempt of {task} in {report:#}"))
}
