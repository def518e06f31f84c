//! Fresh workspaces for attempts: a copy of the task's `repo/` folder or a git checkout,
//! and later the `check/` files laid over it.
//!
//! A `[repo]` task is cloned once per run into a cache (big repositories, several
//! attempts); every attempt then clones the cache locally, which is cheap, and points
//! `origin` back at the real URL so the agent sees the repository as it would upstream.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::OnceCell;

use super::task::{GitRepo, RepoSource};

/// Clones take long on big repositories, but not this long.
const GIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Copies a tree: folders, files (with their permissions) and symlinks as symlinks.
/// Existing files are overwritten.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry.map_err(|err| format!("cannot walk {}: {err}", from.display()))?;
        let relative = entry
            .path()
            .strip_prefix(from)
            .map_err(|err| format!("{}: {err}", entry.path().display()))?;
        let target = to.join(relative);
        let kind = entry.file_type();
        let copied = if kind.is_dir() {
            std::fs::create_dir_all(&target)
        } else if kind.is_symlink() {
            std::fs::read_link(entry.path()).and_then(|link| {
                if target.symlink_metadata().is_ok() {
                    std::fs::remove_file(&target)?;
                }
                std::os::unix::fs::symlink(link, &target)
            })
        } else {
            std::fs::copy(entry.path(), &target).map(|_| ())
        };
        copied.map_err(|err| {
            format!(
                "cannot copy {} to {}: {err}",
                entry.path().display(),
                target.display()
            )
        })?;
    }
    Ok(())
}

/// One task's cached clone, made by whichever attempt gets there first; the others
/// wait for it (and share its failure).
type CachedClone = Arc<OnceCell<Result<PathBuf, String>>>;

/// Clones of `[repo]` tasks, one per task id, made on first use.
#[derive(Debug)]
pub struct GitCache {
    root: tempfile::TempDir,
    clones: Mutex<HashMap<String, CachedClone>>,
}

impl GitCache {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            root: tempfile::Builder::new()
                .prefix("evals-git-cache-")
                .tempdir()?,
            clones: Mutex::new(HashMap::new()),
        })
    }

    /// Fills `workspace` (an empty folder) with the task's starting repository.
    pub async fn prepare(
        &self,
        task_id: &str,
        source: &RepoSource,
        workspace: &Path,
    ) -> Result<(), String> {
        match source {
            RepoSource::Folder(dir) => copy_tree(dir, workspace),
            RepoSource::Empty => Ok(()),
            RepoSource::Git(repo) => {
                let cached = self.cached_clone(task_id, repo).await?;
                checkout(&cached, repo, workspace).await
            }
        }
    }

    async fn cached_clone(&self, task_id: &str, repo: &GitRepo) -> Result<PathBuf, String> {
        let cell = {
            let mut clones = self
                .clones
                .lock()
                .map_err(|_| "the git cache lock is poisoned".to_owned())?;
            Arc::clone(clones.entry(task_id.to_owned()).or_default())
        };
        let dest = self.root.path().join(task_id);
        cell.get_or_init(|| async move {
            git(
                Command::new("git")
                    .args(["clone", "--quiet", "--no-checkout"])
                    .arg(&repo.git_url)
                    .arg(&dest),
                &format!("git clone {}", repo.git_url),
            )
            .await
            .map(|()| dest)
        })
        .await
        .clone()
    }
}

async fn checkout(cached: &Path, repo: &GitRepo, workspace: &Path) -> Result<(), String> {
    git(
        Command::new("git")
            .args(["clone", "--quiet", "--no-checkout"])
            .arg(cached)
            .arg(workspace),
        "git clone (from the run's cache)",
    )
    .await?;
    git(
        Command::new("git").arg("-C").arg(workspace).args([
            "remote",
            "set-url",
            "origin",
            &repo.git_url,
        ]),
        "git remote set-url",
    )
    .await?;
    let commit = repo.commit.as_deref().unwrap_or("HEAD");
    git(
        Command::new("git")
            .arg("-C")
            .arg(workspace)
            .args(["checkout", "--quiet", "--detach", commit]),
        &format!("git checkout {commit}"),
    )
    .await
}

async fn git(command: &mut Command, what: &str) -> Result<(), String> {
    command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(GIT_TIMEOUT, command.output())
        .await
        .map_err(|_| format!("{what} took longer than {} s", GIT_TIMEOUT.as_secs()))?
        .map_err(|err| format!("{what}: cannot run git: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("{what} failed: {}", stderr.trim()))
    }
}
