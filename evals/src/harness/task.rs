//! Loading a suite: `suite.toml` plus one folder per task holding `task.toml`.
//!
//! The format is a contract with the people writing suites (see the module doc of
//! [`crate::harness`]), so every file is parsed with `deny_unknown_fields`: a typo such as
//! `timeout_sec` is an error naming the file, not a limit silently ignored. Everything
//! that can be checked before a run (ids unique, a start repository that exists, sane
//! limits, scripts that parse) is checked here, so a run never dies half-way on a suite
//! mistake.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::scripted::Script;

/// The agent's wall-time limit when a task sets none.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;
/// The check's time limit when a task sets none.
pub const DEFAULT_CHECK_TIMEOUT_SECS: u64 = 300;

/// `suite.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// Defaults to the suite folder's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// With `--scripted`, the share of attempts expected to pass (`--check-expected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_pass_rate: Option<f64>,
}

/// `task.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    /// Defaults to the task folder's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub instruction: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_file: Option<String>,
    /// Shell command run in the fresh workspace before the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// Shell command run after the agent; exit 0 means the task passed.
    pub check: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
    #[serde(default, skip_serializing_if = "Limits::is_unset")]
    pub limits: Limits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<GitRepo>,
}

/// The outcome a suite expects of a task under `--scripted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    Pass,
    Fail,
}

impl Expected {
    pub fn is_pass(self) -> bool {
        self == Expected::Pass
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_pass() { "pass" } else { "fail" })
    }
}

/// `[limits]`: passed on to `agent-rs run`, and the harness's own kill deadlines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_timeout_secs: Option<u64>,
}

impl Limits {
    fn is_unset(&self) -> bool {
        self == &Limits::default()
    }

    /// The agent's wall-time limit (`--timeout`).
    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)
    }

    pub fn check_timeout_secs(&self) -> u64 {
        self.check_timeout_secs
            .unwrap_or(DEFAULT_CHECK_TIMEOUT_SECS)
    }
}

/// `[repo]`: the starting repository as a git clone instead of a `repo/` folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitRepo {
    pub git_url: String,
    /// Checked out detached; the default branch's head when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Where an attempt's workspace comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// A `repo/` folder, copied fresh for every attempt.
    Folder(PathBuf),
    Git(GitRepo),
    /// Neither: the agent starts in an empty folder.
    Empty,
}

/// One task, resolved against its folder.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub dir: PathBuf,
    pub file: TaskFile,
    pub repo: RepoSource,
    /// `check/`, when present.
    pub check_dir: Option<PathBuf>,
    /// `script.json`, when present.
    pub script_path: Option<PathBuf>,
}

/// A loaded suite, tasks in folder-name order.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub dir: PathBuf,
    pub file: SuiteFile,
    pub tasks: Vec<Task>,
}

/// A mistake in a suite, found before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {message}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Suite {
    /// Reads `dir/suite.toml` and every task folder under `dir`.
    pub fn load(dir: &Path) -> Result<Self, SuiteError> {
        let suite_path = dir.join("suite.toml");
        let file: SuiteFile = parse_toml(
            &suite_path,
            "suite.toml (fields: name, description, expected_pass_rate)",
        )?;
        if let Some(rate) = file.expected_pass_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(invalid(
                &suite_path,
                format!("expected_pass_rate = {rate} is not a share between 0 and 1"),
            ));
        }
        let name = file.name.clone().unwrap_or_else(|| folder_name(dir));
        let mut tasks = Vec::new();
        for task_dir in task_dirs(dir)? {
            tasks.push(Task::load(&task_dir)?);
        }
        let mut seen = BTreeSet::new();
        for task in &tasks {
            if !seen.insert(task.id.as_str()) {
                return Err(invalid(
                    &task.dir.join("task.toml"),
                    format!(
                        "task id `{}` is used by another task of the suite; ids must be unique",
                        task.id
                    ),
                ));
            }
        }
        Ok(Self {
            name,
            dir: dir.to_path_buf(),
            file,
            tasks,
        })
    }
}

impl Task {
    /// Reads `dir/task.toml` and finds the task's `repo/`, `check/` and `script.json`.
    pub fn load(dir: &Path) -> Result<Self, SuiteError> {
        let path = dir.join("task.toml");
        let file: TaskFile = parse_toml(
            &path,
            "task.toml (required: instruction, check; optional: id, target_file, setup, tags, expected, [limits], [repo])",
        )?;
        let id = file.id.clone().unwrap_or_else(|| folder_name(dir));
        validate_id(&path, &id)?;
        if file.instruction.trim().is_empty() {
            return Err(invalid(
                &path,
                "`instruction` is empty; say what the agent should do".into(),
            ));
        }
        if file.check.trim().is_empty() {
            return Err(invalid(
                &path,
                "`check` is empty; give a shell command that exits 0 when the task is done".into(),
            ));
        }
        for (name, value) in [
            ("timeout_secs", file.limits.timeout_secs),
            ("check_timeout_secs", file.limits.check_timeout_secs),
            ("max_tokens", file.limits.max_tokens),
            ("max_turns", file.limits.max_turns.map(u64::from)),
        ] {
            if value == Some(0) {
                return Err(invalid(
                    &path,
                    format!("[limits] {name} = 0; use at least 1 or leave it out"),
                ));
            }
        }
        let repo_dir = dir.join("repo");
        let repo = match (&file.repo, repo_dir.is_dir()) {
            (Some(_), true) => {
                return Err(invalid(
                    &path,
                    "both a `repo/` folder and a [repo] section; keep one of them".into(),
                ));
            }
            (Some(git), false) => {
                if git.git_url.trim().is_empty() {
                    return Err(invalid(&path, "[repo] git_url is empty".into()));
                }
                RepoSource::Git(git.clone())
            }
            (None, true) => RepoSource::Folder(repo_dir),
            (None, false) => RepoSource::Empty,
        };
        let check_dir = Some(dir.join("check")).filter(|p| p.is_dir());
        let script_path = Some(dir.join("script.json")).filter(|p| p.is_file());
        Ok(Self {
            id,
            dir: dir.to_path_buf(),
            file,
            repo,
            check_dir,
            script_path,
        })
    }

    /// The scripted model's answers, or `None` when the task has no `script.json`.
    pub fn script(&self) -> Result<Option<Script>, SuiteError> {
        let Some(path) = &self.script_path else {
            return Ok(None);
        };
        Script::from_file(path)
            .map(Some)
            .map_err(|err| invalid(path, err.to_string()))
    }
}

/// Sub-folders of the suite, sorted; hidden ones are skipped.
fn task_dirs(dir: &Path) -> Result<Vec<PathBuf>, SuiteError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SuiteError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| SuiteError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || !path.is_dir() {
            continue;
        }
        if !path.join("task.toml").is_file() {
            return Err(invalid(
                &path,
                "a suite folder holds one sub-folder per task, and this one has no task.toml"
                    .into(),
            ));
        }
        dirs.push(path);
    }
    dirs.sort();
    Ok(dirs)
}

fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|err| SuiteError::Parse {
        path: path.to_path_buf(),
        what,
        message: err.to_string().trim_end().to_owned(),
    })
}

/// Ids name folders (task outputs, imported tasks), so they stay plain.
pub(crate) fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate_id(path: &Path, id: &str) -> Result<(), SuiteError> {
    if is_plain_id(id) {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!(
                "task id `{id}` may only hold letters, digits, `-`, `_` and `.` (it names the output folder)"
            ),
        ))
    }
}

fn invalid(path: &Path, message: String) -> SuiteError {
    SuiteError::Invalid {
        path: path.to_path_buf(),
        message,
    }
}

fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .or_else(|| dir.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "suite".to_owned())
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
