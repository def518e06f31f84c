//! The branch of a pull request: the agent's diff applied to the commit the task started
//! from, committed, and pushed.
//!
//! The starting commit comes from the task's own workspace tarball (the clone the agent
//! got, `.git` included), so the branch starts exactly where the agent did even if the
//! remote branch moved since. Only the tarball's `.git` is unpacked, and the diff is
//! applied to the commit's tree in the object database (`apply_to_tree`), never to files
//! on disk: an agent's crafted `diff.patch` cannot write anywhere on the worker. A patch
//! touching `.git` is refused.

use std::fs::File;
use std::path::{Component, Path};

use flate2::read::GzDecoder;
use git2::{Diff, Repository, Signature};
use secrecy::SecretString;

use crate::workspace::{CloneOptions, push_branch};

/// What to commit and where to push it.
pub struct BranchSpec<'a> {
    /// The branch's short name (`agent/{task id}`).
    pub branch: &'a str,
    pub message: &'a str,
    /// The repository the task cloned, which the branch is pushed to.
    pub url: &'a str,
}

/// Unpacks the workspace's `.git` from `tarball` into `scratch`, commits `diff` on top of
/// the checked-out commit as `spec.branch`, and pushes it; the new commit's id. Errors are
/// sentences for `pr_error`.
pub fn commit_and_push(
    tarball: &Path,
    scratch: &Path,
    diff: &[u8],
    spec: &BranchSpec<'_>,
    token: Option<&SecretString>,
    opts: &CloneOptions,
) -> Result<String, String> {
    unpack_git_dir(tarball, scratch)?;
    let repo = Repository::open(scratch).map_err(|e| {
        format!(
            "the task's workspace holds no usable repository: {}",
            e.message()
        )
    })?;
    let commit = commit_diff(&repo, diff, spec)?;
    let refname = format!("refs/heads/{}", spec.branch);
    repo.reference(&refname, commit, true, "pull request branch")
        .map_err(|e| format!("cannot name the branch {}: {}", spec.branch, e.message()))?;
    push_branch(&repo, spec.url, &refname, token, opts).map_err(|e| e.to_string())?;
    Ok(commit.to_string())
}

/// The diff as a commit on the workspace's `HEAD`.
pub fn commit_diff(
    repo: &Repository,
    diff: &[u8],
    spec: &BranchSpec<'_>,
) -> Result<git2::Oid, String> {
    let base = repo
        .head()
        .and_then(|head| head.peel_to_commit())
        .map_err(|e| {
            format!(
                "the task's workspace has no starting commit: {}",
                e.message()
            )
        })?;
    let diff = Diff::from_buffer(diff).map_err(|e| {
        format!(
            "the agent's diff.patch is not a patch git can read: {}",
            e.message()
        )
    })?;
    for delta in diff.deltas() {
        for path in [delta.old_file().path(), delta.new_file().path()]
            .into_iter()
            .flatten()
        {
            if touches_git_dir(path) {
                return Err(format!(
                    "the agent's diff.patch changes {}, inside .git; refused",
                    path.display()
                ));
            }
        }
    }
    let base_tree = base.tree().map_err(|e| e.message().to_string())?;
    let mut index = repo.apply_to_tree(&base_tree, &diff, None).map_err(|e| {
        format!(
            "the agent's diff.patch does not apply to the starting commit: {}",
            e.message()
        )
    })?;
    let tree_id = index
        .write_tree_to(repo)
        .map_err(|e| format!("cannot write the changed tree: {}", e.message()))?;
    if tree_id == base_tree.id() {
        return Err("the agent's diff.patch changes nothing".into());
    }
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| e.message().to_string())?;
    let signature = Signature::now("coding agent", "agent@users.noreply.localhost")
        .map_err(|e| e.message().to_string())?;
    repo.commit(None, &signature, &signature, spec.message, &tree, &[&base])
        .map_err(|e| format!("cannot commit the changes: {}", e.message()))
}

fn touches_git_dir(path: &Path) -> bool {
    path.components().any(|c| match c {
        Component::Normal(name) => name.to_string_lossy().eq_ignore_ascii_case(".git"),
        _ => true,
    })
}

/// Unpacks the tarball's `.git` entries (files and folders only) into `dest`.
fn unpack_git_dir(tarball: &Path, dest: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot make a scratch folder: {e}"))?;
    let file =
        File::open(tarball).map_err(|e| format!("cannot read the workspace tarball: {e}"))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|e| format!("cannot read the workspace tarball: {e}"))?;
    let mut found = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("cannot read the workspace tarball: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("cannot read the workspace tarball: {e}"))?
            .into_owned();
        let in_git = path
            .components()
            .find(|c| !matches!(c, Component::CurDir))
            .is_some_and(|first| first.as_os_str() == ".git");
        let kind = entry.header().entry_type();
        if !in_git || !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        found = true;
        entry
            .unpack_in(dest)
            .map_err(|e| format!("cannot unpack the workspace's repository: {e}"))?;
    }
    if !found {
        return Err("the task's workspace has no .git (was it uploaded as a zip?)".into());
    }
    Ok(())
}

#[cfg(test)]
#[path = "git_tests.rs"]
mod tests;
