//! The git mode: a workspace inside a git work tree. Its state is a git tree built from
//! the working directory (tracked files with their current, possibly uncommitted,
//! content plus untracked files that are not ignored), so changes the user had made
//! before the run are part of the starting state, not of the agent's patch.
//!
//! The tree is built in the repository's index as loaded in memory and never written
//! back: `.git/index` stays untouched. Blobs and trees do go into the object database;
//! nothing refers to them, so `git gc` prunes them in time.
//!
//! A root below the top of the work tree is diffed on its own: the trees compared are
//! the subtrees at the root, so patch paths are relative to the root and the patch
//! applies to a copy of that folder.

use std::path::{Path, PathBuf};

use git2::{
    DiffOptions, ErrorCode, IndexAddOption, ObjectType, Oid, Patch, Repository, Tree, TreeWalkMode,
    TreeWalkResult,
};

use super::{DiffError, WorkspaceDiff};

/// The starting state of a root inside a git work tree.
#[derive(Debug)]
pub(super) struct GitSnapshot {
    workdir: PathBuf,
    /// The root relative to the work tree; empty when the root is the work tree.
    prefix: PathBuf,
    start_tree: Oid,
}

/// Why a root is diffed as a plain folder although git found something.
pub(super) enum NotGit {
    NoRepository,
    Unusable(String),
}

impl GitSnapshot {
    /// The snapshot of `root` (canonical) or why the git mode does not apply to it.
    pub(super) fn capture(root: &Path) -> Result<Result<Self, NotGit>, DiffError> {
        let repo = match Repository::discover(root) {
            Ok(repo) => repo,
            Err(error) if error.code() == ErrorCode::NotFound => {
                return Ok(Err(NotGit::NoRepository));
            }
            // An unsafe owner, a broken `.git`: the folder itself is still diffable.
            Err(error) => return Ok(Err(NotGit::Unusable(error.message().to_owned()))),
        };
        let Some(workdir) = repo.workdir().and_then(|dir| dir.canonicalize().ok()) else {
            return Ok(Err(NotGit::Unusable("bare repository".into())));
        };
        let Ok(prefix) = root.strip_prefix(&workdir).map(Path::to_path_buf) else {
            return Ok(Err(NotGit::Unusable(
                "root is outside the work tree".into(),
            )));
        };
        if !prefix.as_os_str().is_empty()
            && repo
                .is_path_ignored(&prefix)
                .map_err(|source| git_error("check whether the root is ignored", root, source))?
        {
            return Ok(Err(NotGit::Unusable(
                "root is ignored by the repository".into(),
            )));
        }
        let (start_tree, _) = snapshot_tree(&repo, &workdir, &prefix, None)?;
        Ok(Ok(Self {
            workdir,
            prefix,
            start_tree,
        }))
    }

    pub(super) fn diff(&self) -> Result<WorkspaceDiff, DiffError> {
        let repo = Repository::open(&self.workdir)
            .map_err(|source| git_error("open the repository", &self.workdir, source))?;
        let context = |action: &'static str| {
            let workdir = self.workdir.clone();
            move |source| git_error(action, &workdir, source)
        };
        let start = repo
            .find_tree(self.start_tree)
            .map_err(context("read the starting tree"))?;
        let (end_id, nested) = snapshot_tree(&repo, &self.workdir, &self.prefix, Some(&start))?;
        let mut diff = WorkspaceDiff::default();
        for path in nested {
            let path = path.strip_prefix(&self.prefix).unwrap_or(&path);
            diff.notes.push(format!(
                "{}: a git repository of its own inside the workspace; its files are not in \
                 the patch",
                path.display()
            ));
        }
        if end_id == self.start_tree {
            return Ok(diff);
        }
        let end = repo
            .find_tree(end_id)
            .map_err(context("read the current tree"))?;
        let mut options = DiffOptions::new();
        // Submodules are repositories of their own, outside this patch.
        options
            .show_binary(true)
            .context_lines(3)
            .ignore_submodules(true);
        let tree_diff = repo
            .diff_tree_to_tree(Some(&start), Some(&end), Some(&mut options))
            .map_err(context("diff the trees"))?;
        for index in 0..tree_diff.deltas().len() {
            let Some(mut patch) =
                Patch::from_diff(&tree_diff, index).map_err(context("build a patch"))?
            else {
                continue;
            };
            let (_, insertions, deletions) = patch.line_stats().map_err(context("count lines"))?;
            let buffer = patch.to_buf().map_err(context("print a patch"))?;
            let text = match String::from_utf8(buffer.to_vec()) {
                Ok(text) => {
                    diff.insertions += insertions;
                    diff.deletions += deletions;
                    text
                }
                // Text that is not UTF-8: sent as binary so the patch stays a `String`.
                Err(_) => {
                    let delta = patch.delta();
                    let path = delta.new_file().path().or(delta.old_file().path());
                    binary_section(&repo, &start, &end, path.unwrap_or(Path::new("")))
                        .map_err(context("print a binary patch"))?
                }
            };
            if text.contains("\nBinary files ") && !text.contains("GIT binary patch") {
                diff.notes.push(format!(
                    "{}: binary content is not in the patch; `git apply` cannot recreate it",
                    patch
                        .delta()
                        .new_file()
                        .path()
                        .unwrap_or(Path::new("?"))
                        .display()
                ));
            }
            diff.patch.push_str(&text);
            diff.files_changed += 1;
        }
        Ok(diff)
    }
}

/// The tree of the working directory under `prefix`, built in the repository's index
/// held in memory. Files of `keep` (the starting tree) that still exist are kept even if
/// a `.gitignore` written since hides them: they are unchanged, not deleted.
/// Also returns the untracked repositories nested in the root, which are left out.
fn snapshot_tree(
    repo: &Repository,
    workdir: &Path,
    prefix: &Path,
    keep: Option<&Tree<'_>>,
) -> Result<(Oid, Vec<PathBuf>), DiffError> {
    let context = |action: &'static str| move |source| git_error(action, workdir, source);
    let mut index = repo.index().map_err(context("read the index"))?;
    // The callbacks skip (1) paths outside the root, so only the root's files are read.
    let mut under_root = |path: &Path, _: &[u8]| i32::from(!path.starts_with(prefix));
    // An untracked nested repository comes as a directory path (`dep/`), which libgit2
    // refuses to add; it is skipped and reported.
    let mut nested = Vec::new();
    let mut addable = |path: &Path, _: &[u8]| {
        if !path.starts_with(prefix) {
            return 1;
        }
        if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
            nested.push(path.to_path_buf());
            return 1;
        }
        0
    };
    // "*" rather than no pathspec: git2 hands the callback a null pathspec otherwise.
    let everything = ["*"];
    index
        .add_all(everything, IndexAddOption::DEFAULT, Some(&mut addable))
        .map_err(context("add the working directory to an in-memory index"))?;
    index
        .update_all(everything, Some(&mut under_root))
        .map_err(context("update the in-memory index"))?;
    if let Some(keep) = keep {
        let mut kept = Vec::new();
        keep.walk(TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                kept.push(prefix.join(dir).join(path_from_bytes(entry.name_bytes())));
            }
            TreeWalkResult::Ok
        })
        .map_err(context("walk the starting tree"))?;
        for path in kept {
            let on_disk = workdir
                .join(&path)
                .symlink_metadata()
                .is_ok_and(|meta| !meta.is_dir());
            if on_disk && index.get_path(&path, 0).is_none() {
                index
                    .add_path(&path)
                    .map_err(context("add a starting file"))?;
            }
        }
    }
    resolve_conflicts(&mut index, workdir).map_err(context("resolve index conflicts"))?;
    let tree = index
        .write_tree_to(repo)
        .map_err(context("write the tree"))?;
    Ok((subtree(repo, workdir, tree, prefix)?, nested))
}

/// The tree at `prefix` inside `tree`; an empty tree when nothing is there yet.
fn subtree(repo: &Repository, workdir: &Path, tree: Oid, prefix: &Path) -> Result<Oid, DiffError> {
    let context = |action: &'static str| move |source| git_error(action, workdir, source);
    if prefix.as_os_str().is_empty() {
        return Ok(tree);
    }
    let tree = repo.find_tree(tree).map_err(context("read the tree"))?;
    match tree.get_path(prefix) {
        Ok(entry) if entry.kind() == Some(ObjectType::Tree) => Ok(entry.id()),
        // Nothing under the root is tracked or addable yet: an empty tree.
        Ok(_) => empty_tree(repo).map_err(context("write an empty tree")),
        Err(error) if error.code() == ErrorCode::NotFound => {
            empty_tree(repo).map_err(context("write an empty tree"))
        }
        Err(error) => Err(git_error("find the root in the tree", workdir, error)),
    }
}

/// A half-finished merge leaves conflict entries that block writing a tree; the working
/// directory's version (or its absence) is the state that counts.
fn resolve_conflicts(index: &mut git2::Index, workdir: &Path) -> Result<(), git2::Error> {
    if !index.has_conflicts() {
        return Ok(());
    }
    let mut paths = Vec::new();
    for conflict in index.conflicts()? {
        let conflict = conflict?;
        let entry = conflict.our.or(conflict.their).or(conflict.ancestor);
        if let Some(entry) = entry {
            paths.push(path_from_bytes(&entry.path));
        }
    }
    for path in paths {
        if workdir.join(&path).symlink_metadata().is_ok() {
            index.add_path(&path)?;
        } else {
            index.conflict_remove(&path)?;
        }
    }
    Ok(())
}

fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

fn empty_tree(repo: &Repository) -> Result<Oid, git2::Error> {
    repo.treebuilder(None)?.write()
}

/// One file's section forced to binary form.
fn binary_section(
    repo: &Repository,
    start: &Tree<'_>,
    end: &Tree<'_>,
    path: &Path,
) -> Result<String, git2::Error> {
    let mut options = DiffOptions::new();
    options
        .show_binary(true)
        .force_binary(true)
        .disable_pathspec_match(true)
        .pathspec(path);
    let diff = repo.diff_tree_to_tree(Some(start), Some(end), Some(&mut options))?;
    let mut text = String::new();
    for index in 0..diff.deltas().len() {
        if let Some(mut patch) = Patch::from_diff(&diff, index)? {
            let buffer = patch.to_buf()?;
            text.push_str(&String::from_utf8_lossy(&buffer));
        }
    }
    Ok(text)
}

fn git_error(action: &'static str, path: &Path, source: git2::Error) -> DiffError {
    DiffError::Git {
        action,
        path: path.to_path_buf(),
        source,
    }
}
