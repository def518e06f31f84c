//! The two starting points of a resumed run: the task's base (for the cumulative
//! `diff.patch`) and the state the previous run left (for `step.patch`).
//!
//! The base is recorded with the previous diff taken out of the workspace: a local
//! folder is at the previous run's end, so the diff is reverse-applied, the base
//! recorded, and the diff applied again (`git apply` is all-or-nothing, so a workspace
//! edited since is refused untouched); a job's folder is the base already, so the base
//! is recorded and the diff applied once. Every file the diff touches is also recorded
//! in the base as it was, so the cumulative diff carries it even where the snapshot does
//! not look (an ignored file the agent wrote).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use super::ResumeError;
use crate::workspace_diff::WorkspaceSnapshot;

/// Where the workspace stands when the resumed run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceState {
    /// As the previous run left it (`agent-rs run --resume`).
    AtEnd,
    /// The task's base, the previous diff not applied yet (a job).
    AtBase,
}

/// The snapshots a resumed run diffs against.
#[derive(Debug)]
pub struct Baselines {
    /// The task's base: `diff.patch` is diffed against it.
    pub base: Arc<WorkspaceSnapshot>,
    /// Where the previous run ended: `step.patch` is diffed against it.
    pub step: Arc<WorkspaceSnapshot>,
}

/// Records both starting points and leaves the workspace where the previous run ended.
pub fn prepare_baselines(
    root: &Path,
    previous_diff: &str,
    state: WorkspaceState,
) -> Result<Baselines, ResumeError> {
    let snapshot = |root: &Path| {
        WorkspaceSnapshot::capture(root).map_err(|e| ResumeError::Workspace(e.to_string()))
    };
    if previous_diff.trim().is_empty() {
        return Ok(Baselines {
            base: Arc::new(snapshot(root)?),
            step: Arc::new(snapshot(root)?),
        });
    }
    let holder = tempfile::Builder::new()
        .prefix("agent-rs-resume-")
        .tempdir()
        .map_err(|e| ResumeError::Workspace(format!("cannot create a temporary folder: {e}")))?;
    let patch = holder.path().join("previous.patch");
    std::fs::write(&patch, previous_diff)
        .map_err(|e| ResumeError::Workspace(format!("cannot write the previous diff: {e}")))?;
    if state == WorkspaceState::AtEnd {
        git_apply(root, &patch, true).map_err(ResumeError::NotAtEnd)?;
    }
    let base = snapshot(root);
    if let Ok(base) = &base {
        for path in touched_paths(previous_diff) {
            base.record_original(&root.join(path));
        }
    }
    // Put the previous changes back whatever the snapshot did: a local workspace must not
    // be left at the base.
    let applied = git_apply(root, &patch, false);
    let base = base?;
    applied.map_err(ResumeError::DoesNotApply)?;
    Ok(Baselines {
        base: Arc::new(base),
        step: Arc::new(snapshot(root)?),
    })
}

/// `git apply` of `patch` in `root` as a patch tool: no repository above `root` is
/// looked for (its paths would be taken from the top of that work tree) and no index is
/// touched. The error is git's own message.
fn git_apply(root: &Path, patch: &Path, reverse: bool) -> Result<(), String> {
    let mut command = Command::new("git");
    command
        .arg("apply")
        .arg("--binary")
        .arg("--whitespace=nowarn");
    if reverse {
        command.arg("--reverse");
    }
    if let Some(parent) = root.parent() {
        command.env("GIT_CEILING_DIRECTORIES", parent);
    }
    let output = command
        .arg(patch)
        .current_dir(root)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// The paths a patch names, old and new, relative to the root.
fn touched_paths(patch: &str) -> Vec<std::path::PathBuf> {
    let Ok(diff) = git2::Diff::from_buffer(patch.as_bytes()) else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(path) = file.path()
                && path.is_relative()
                && !paths.iter().any(|known| known == path)
            {
                paths.push(path.to_path_buf());
            }
        }
    }
    paths
}

impl Baselines {
    /// What the file tools tell before they write: both snapshots, so each diff carries
    /// the file.
    pub fn observer(&self) -> Arc<dyn tools::WriteObserver> {
        Arc::new(BothSnapshots {
            base: self.base.clone(),
            step: self.step.clone(),
        })
    }
}

#[derive(Debug)]
struct BothSnapshots {
    base: Arc<WorkspaceSnapshot>,
    step: Arc<WorkspaceSnapshot>,
}

impl tools::WriteObserver for BothSnapshots {
    fn before_write(&self, path: &Path) {
        self.base.record_original(path);
        self.step.record_original(path);
    }
}
