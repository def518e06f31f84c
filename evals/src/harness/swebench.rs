//! SWE-bench interop, both ways.
//!
//! - `evals swebench import` turns SWE-bench instances (JSON lines, the dataset's field
//!   layout) into a suite: one task per instance, cloned from GitHub at `base_commit`,
//!   with the problem statement as the instruction and a generic check that applies the
//!   instance's `test_patch` and runs its `FAIL_TO_PASS` tests with pytest. That check is
//!   a quick local signal only: the official SWE-bench harness (per-instance
//!   environments, each repository's own test runner, `PASS_TO_PASS`) remains the judge.
//! - `evals swebench export` turns a run's report into the predictions file that harness
//!   reads: `{"instance_id", "model_name_or_path", "model_patch"}` per line, the patch
//!   being the first attempt's `diff.patch`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::report::Report;
use super::task::{Expected, GitRepo, Limits, SuiteFile, TaskFile, is_plain_id};

/// One SWE-bench instance; fields the harness does not use are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    /// `owner/name` on GitHub.
    pub repo: String,
    pub base_commit: String,
    pub problem_statement: String,
    #[serde(default)]
    pub hints_text: String,
    pub test_patch: String,
    /// The reference fix; kept next to the task (`gold.patch`), never shown to the agent.
    #[serde(default)]
    pub patch: String,
    #[serde(rename = "FAIL_TO_PASS")]
    pub fail_to_pass: TestList,
    #[serde(rename = "PASS_TO_PASS", default)]
    pub pass_to_pass: TestList,
}

/// The dataset stores test lists as JSON-encoded strings; some exports decode them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TestList {
    Encoded(String),
    List(Vec<String>),
}

impl Default for TestList {
    fn default() -> Self {
        TestList::List(Vec::new())
    }
}

impl TestList {
    fn tests(&self) -> Result<Vec<String>, String> {
        match self {
            TestList::List(tests) => Ok(tests.clone()),
            TestList::Encoded(text) => serde_json::from_str(text)
                .map_err(|err| format!("not a JSON-encoded list of test names ({err}): {text}")),
        }
    }
}

/// Writes `predictions.jsonl` from `report` (at `report_path`); returns how many lines.
pub fn export(report_path: &Path, out: &Path, model_name: Option<&str>) -> Result<usize, String> {
    let report = Report::read(report_path)?;
    let report_dir = report_path.parent().unwrap_or(Path::new("."));
    let model = model_name.unwrap_or(&report.model);
    let mut lines = String::new();
    for task in &report.tasks {
        let Some(first) = task.attempts.iter().min_by_key(|record| record.attempt) else {
            continue;
        };
        let folder = if first.output_dir.is_empty() {
            PathBuf::from("tasks").join(&task.id)
        } else {
            PathBuf::from(&first.output_dir)
        };
        let patch_path = report_dir.join(folder).join("diff.patch");
        // No diff (the agent never got far) is an empty prediction: unresolved, not lost.
        let patch = match std::fs::read_to_string(&patch_path) {
            Ok(patch) => patch,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(format!("cannot read {}: {err}", patch_path.display())),
        };
        let line = serde_json::json!({
            "instance_id": task.id,
            "model_name_or_path": model,
            "model_patch": patch,
        });
        let _ = writeln!(lines, "{line}");
    }
    std::fs::write(out, &lines).map_err(|err| format!("cannot write {}: {err}", out.display()))?;
    Ok(report.tasks.len())
}

/// Writes a suite folder from an instances JSONL file; returns how many tasks.
pub fn import(instances: &Path, suite_dir: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(instances)
        .map_err(|err| format!("cannot read {}: {err}", instances.display()))?;
    let mut parsed = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let instance: Instance = serde_json::from_str(line).map_err(|err| {
            format!(
                "{} line {}: not a SWE-bench instance ({err}); expected JSON lines with \
                 instance_id, repo, base_commit, problem_statement, test_patch, FAIL_TO_PASS",
                instances.display(),
                index + 1
            )
        })?;
        parsed.push((index + 1, instance));
    }
    if parsed.is_empty() {
        return Err(format!("{} holds no instances", instances.display()));
    }
    let write = |path: &Path, text: &str| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
        }
        std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
    };
    let source = instances
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suite = SuiteFile {
        name: None,
        description: Some(format!(
            "SWE-bench instances imported from {source}. The generic checks run FAIL_TO_PASS \
             with pytest; the official SWE-bench harness remains the judge."
        )),
        expected_pass_rate: None,
    };
    write(&suite_dir.join("suite.toml"), &to_toml(&suite)?)?;
    for (line, instance) in &parsed {
        let origin = format!("{} line {line}", instances.display());
        let task_dir = task_dir(suite_dir, &instance.instance_id, &origin)?;
        let tests = instance
            .fail_to_pass
            .tests()
            .map_err(|err| format!("{origin}: FAIL_TO_PASS is {err}"))?;
        instance
            .pass_to_pass
            .tests()
            .map_err(|err| format!("{origin}: PASS_TO_PASS is {err}"))?;
        if tests.is_empty() {
            return Err(format!("{origin}: FAIL_TO_PASS is empty; nothing to check"));
        }
        write(&task_dir.join("task.toml"), &to_toml(&task_file(instance))?)?;
        write(
            &task_dir.join("check/.swebench/test.patch"),
            &instance.test_patch,
        )?;
        write(
            &task_dir.join("check/.swebench/check.sh"),
            &check_script(instance, &tests),
        )?;
        if !instance.patch.is_empty() {
            write(&task_dir.join("gold.patch"), &instance.patch)?;
        }
    }
    Ok(parsed.len())
}

fn task_file(instance: &Instance) -> TaskFile {
    let mut instruction = instance.problem_statement.trim_end().to_owned();
    if !instance.hints_text.trim().is_empty() {
        let _ = write!(
            instruction,
            "\n\nHints:\n{}",
            instance.hints_text.trim_end()
        );
    }
    TaskFile {
        id: Some(instance.instance_id.clone()),
        instruction,
        target_file: None,
        setup: None,
        check: "bash .swebench/check.sh".to_owned(),
        tags: vec!["swebench".to_owned(), instance.repo.clone()],
        expected: Some(Expected::Pass),
        limits: Limits::default(),
        repo: Some(GitRepo {
            git_url: format!("https://github.com/{}.git", instance.repo),
            commit: Some(instance.base_commit.clone()),
        }),
    }
}

/// Restores the files the test patch touches to the base commit (the agent may have
/// edited them), applies the test patch, runs the FAIL_TO_PASS tests.
fn check_script(instance: &Instance, tests: &[String]) -> String {
    let mut script = format!(
        "#!/usr/bin/env bash\n\
         # Generic check for SWE-bench instance {id}: a quick local signal only.\n\
         # The official SWE-bench harness (per-instance environment, the repository's own\n\
         # test runner, PASS_TO_PASS) remains the judge of this instance.\n\
         set -euo pipefail\n",
        id = instance.instance_id
    );
    for file in patched_files(&instance.test_patch) {
        let file = shell_quote(&file);
        let _ = writeln!(
            script,
            "git checkout -q {} -- {file} 2>/dev/null || rm -f -- {file}",
            shell_quote(&instance.base_commit)
        );
    }
    script.push_str("git apply -v .swebench/test.patch\n");
    let quoted: Vec<String> = tests.iter().map(|test| shell_quote(test)).collect();
    let _ = writeln!(script, "python -m pytest -x -q {}", quoted.join(" "));
    script
}

/// Paths a unified diff touches, from its `--- a/` and `+++ b/` lines.
fn patched_files(patch: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for line in patch.lines() {
        let path = line
            .strip_prefix("--- a/")
            .or_else(|| line.strip_prefix("+++ b/"));
        if let Some(path) = path {
            let path = path.trim_end_matches('\t').to_owned();
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    files
}

/// Single-quotes for bash.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn task_dir(suite_dir: &Path, instance_id: &str, origin: &str) -> Result<PathBuf, String> {
    if is_plain_id(instance_id) {
        Ok(suite_dir.join(instance_id))
    } else {
        Err(format!(
            "{origin}: instance_id `{instance_id}` cannot name a task folder \
             (letters, digits, `-`, `_` and `.` only)"
        ))
    }
}

fn to_toml<T: serde::Serialize>(value: &T) -> Result<String, String> {
    toml::to_string_pretty(value).map_err(|err| format!("cannot write TOML: {err}"))
}

#[cfg(test)]
#[path = "swebench_tests.rs"]
mod tests;
