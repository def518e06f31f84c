//! `agent-rs run` on unusual and hostile workspaces, end to end through the real binary
//! and the scripted model server: every change lands in `diff.patch` (or `result.json`
//! and stderr say what was left out and why), the patch always applies with `git apply`
//! to an untouched copy, nothing is corrupted, nothing unbounded reaches the model, and
//! the run always completes with its outputs written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod context;
mod diff_coverage;
mod git_dir;
mod secrets;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::*;

/// A workspace, an untouched copy of its starting state, and an output folder.
pub struct Case {
    pub ws: tempfile::TempDir,
    pub out: tempfile::TempDir,
    pristine: tempfile::TempDir,
    /// The request bodies the model server received in the last run.
    requests: std::sync::Mutex<Vec<Value>>,
}

impl Case {
    /// `setup` builds the starting state; the copy is taken right after it.
    pub fn new(setup: impl FnOnce(&Path)) -> Self {
        let ws = tempfile::tempdir().unwrap();
        setup(ws.path());
        let pristine = tempfile::tempdir().unwrap();
        copy_lenient(ws.path(), pristine.path());
        Self {
            ws,
            out: tempfile::tempdir().unwrap(),
            pristine,
            requests: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn root(&self) -> &Path {
        self.ws.path()
    }

    /// Runs the agent with `steps` as the model's answers (a final message is added).
    pub async fn run(&self, steps: Vec<Value>, env: &[(&str, &str)]) -> Run {
        self.run_with(steps, env, &[]).await
    }

    pub async fn run_with(
        &self,
        mut steps: Vec<Value>,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Run {
        steps.push(json!({"type": "message", "content": "done"}));
        let server = server(json!({"model": "scripted", "steps": steps})).await;
        let mut all: Vec<&str> = args.to_vec();
        all.push("work on the workspace");
        let run = run_agent(self.root(), self.out.path(), &server.base_url(), &all, env).await;
        *self.requests.lock().unwrap() = server.requests().into_iter().map(|r| r.body).collect();
        run
    }

    /// The request bodies the model server received in the last run.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// Applies the run's patch to the untouched copy with `git apply` (which must
    /// accept it whole) and returns the copy.
    pub fn apply(&self, run: &Run) -> PathBuf {
        let pristine = self.pristine.path();
        let diff = run.diff();
        if !diff.is_empty() {
            git_apply(pristine, &diff);
        }
        pristine.to_path_buf()
    }

    /// Applies the patch and asserts the copy now equals the workspace (`.git` aside).
    pub fn apply_and_compare(&self, run: &Run) {
        let copy = self.apply(run);
        assert_eq!(
            tree_contents(&copy).keys().collect::<Vec<_>>(),
            tree_contents(self.root()).keys().collect::<Vec<_>>()
        );
        assert!(
            tree_contents(&copy) == tree_contents(self.root()),
            "the patch did not reproduce the workspace:\n{}",
            run.diff().chars().take(4000).collect::<String>()
        );
    }
}

/// A tool-calls step.
pub fn calls(calls: Vec<(&str, Value)>) -> Value {
    let calls: Vec<Value> = calls
        .into_iter()
        .map(|(name, arguments)| json!({"name": name, "arguments": arguments}))
        .collect();
    json!({"type": "tool_calls", "calls": calls})
}

pub fn edit(path: &str, old: &str, new: &str) -> Value {
    calls(vec![(
        "edit_file_content",
        json!({"file_path": path, "old_text": old, "new_text": new}),
    )])
}

pub fn shell(command: &str) -> Value {
    calls(vec![(
        "run_shell_command",
        json!({"command_string": command}),
    )])
}

/// `result.json`'s list of changes the patch leaves out.
pub fn left_out(run: &Run) -> Vec<Value> {
    run.result()["diff_left_out"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Copies a tree (files, directories, `.git` folders skipped), leaving out what cannot be
/// read or created (paths past the system's limit).
pub fn copy_lenient(from: &Path, to: &Path) {
    let _ = std::fs::create_dir_all(to);
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name() == ".git" {
            continue;
        }
        let target = to.join(entry.file_name());
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => copy_lenient(&entry.path(), &target),
            Ok(kind) if kind.is_file() => {
                let _ = std::fs::copy(entry.path(), &target);
            }
            _ => {}
        }
    }
}
