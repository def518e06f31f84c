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
//!
//! Repositories nested in the root (untracked ones and submodules) are not part of its
//! tree; the snapshot names them so the caller diffs each on its own, its paths under
//! a prefix. Directories libgit2 cannot walk (see [`git_reach`](super::git_reach)) are
//! kept out of its way and named as left out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use git2::{
    DiffOptions, ErrorCode, IndexAddOption, ObjectType, Oid, Patch, Repository, Tree, TreeWalkMode,
    TreeWalkResult,
};

use super::git_reach::{Unreachable, find_unreachable, ignore_rule};
use super::{DiffError, LeftOut, WorkspaceDiff};

/// The starting state of a root inside a git work tree.
#[derive(Debug)]
pub(super) struct GitSnapshot {
    workdir: PathBuf,
    /// The root relative to the work tree; empty when the root is the work tree.
    prefix: PathBuf,
    start_tree: Oid,
    /// Directories kept out of libgit2's walks, relative to the work tree.
    unreachable: Vec<Unreachable>,
    /// Repositories nested in the root at the start, relative to the root.
    nested: Vec<PathBuf>,
}

/// A tree built from the working directory, and what it leaves to others.
struct BuiltTree {
    id: Oid,
    /// Untracked repositories and initialised submodules under the root, relative to it.
    nested: Vec<PathBuf>,
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
        let mut unreachable = Vec::new();
        let built = snapshot_tree(&repo, &workdir, &prefix, None, &mut unreachable)?;
        Ok(Ok(Self {
            workdir,
            prefix,
            start_tree: built.id,
            unreachable,
            nested: built.nested,
        }))
    }

    /// Whether the starting tree holds a file at `relative` (to the root).
    pub(super) fn holds(&self, relative: &Path) -> bool {
        let Ok(repo) = Repository::open(&self.workdir) else {
            return false;
        };
        repo.find_tree(self.start_tree)
            .and_then(|tree| tree.get_path(relative))
            .is_ok_and(|entry| entry.kind() != Some(ObjectType::Tree))
    }

    /// Repositories nested in the root when the run started, relative to the root.
    pub(super) fn nested(&self) -> &[PathBuf] {
        &self.nested
    }

    /// Appends the changes under the root to `diff`, paths prefixed with `shown_as` (the
    /// root's place in the workspace when it is a nested repository); `covered` receives
    /// every path either tree holds. Returns the repositories nested in the root now.
    pub(super) fn diff_into(
        &self,
        diff: &mut WorkspaceDiff,
        shown_as: &Path,
        covered: &mut BTreeSet<PathBuf>,
    ) -> Result<Vec<PathBuf>, DiffError> {
        let repo = Repository::open(&self.workdir)
            .map_err(|source| git_error("open the repository", &self.workdir, source))?;
        let context = |action: &'static str| {
            let workdir = self.workdir.clone();
            move |source| git_error(action, &workdir, source)
        };
        let start = repo
            .find_tree(self.start_tree)
            .map_err(context("read the starting tree"))?;
        let mut unreachable = self.unreachable.clone();
        let built = snapshot_tree(
            &repo,
            &self.workdir,
            &self.prefix,
            Some(&start),
            &mut unreachable,
        )?;
        for dir in &unreachable {
            if let Ok(below_root) = dir.path.strip_prefix(&self.prefix) {
                diff.left_out.push(LeftOut::new(
                    &shown_as.join(below_root).to_string_lossy(),
                    &format!("{}; its files are not in the patch", dir.reason),
                ));
            }
        }
        let end = repo
            .find_tree(built.id)
            .map_err(context("read the current tree"))?;
        for tree in [&start, &end] {
            collect_paths(tree, shown_as, covered).map_err(context("walk a tree"))?;
        }
        if built.id == self.start_tree {
            return Ok(built.nested);
        }
        let a_prefix = format!("a/{}", prefix_text(shown_as));
        let b_prefix = format!("b/{}", prefix_text(shown_as));
        let mut options = DiffOptions::new();
        // Submodules are diffed on their own, as nested repositories.
        options
            .show_binary(true)
            .context_lines(3)
            .ignore_submodules(true)
            .old_prefix(&a_prefix)
            .new_prefix(&b_prefix);
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
            let delta = patch.delta();
            let path = delta
                .new_file()
                .path()
                .or(delta.old_file().path())
                .unwrap_or(Path::new(""))
                .to_path_buf();
            let buffer = patch.to_buf().map_err(context("print a patch"))?;
            let text = match String::from_utf8(buffer.to_vec()) {
                Ok(text) => {
                    diff.insertions += insertions;
                    diff.deletions += deletions;
                    text
                }
                // Text that is not UTF-8: sent as binary so the patch stays a `String`.
                Err(_) => binary_section(&repo, &start, &end, &path, &a_prefix, &b_prefix)
                    .map_err(context("print a binary patch"))?,
            };
            if text.contains("\nBinary files ") && !text.contains("GIT binary patch") {
                // `git apply` would refuse the whole patch for this one section.
                diff.left_out.push(LeftOut::new(
                    &shown_as.join(&path).to_string_lossy(),
                    "git could not encode its binary content for the patch",
                ));
                continue;
            }
            diff.patch.push_str(&text);
            diff.files_changed += 1;
        }
        Ok(built.nested)
    }
}

/// `dir/` for a nested root's place, empty for the workspace itself.
fn prefix_text(shown_as: &Path) -> String {
    if shown_as.as_os_str().is_empty() {
        return String::new();
    }
    format!("{}/", shown_as.to_string_lossy())
}

/// Adds the path of every file in `tree` (prefixed with `shown_as`) to `paths`.
fn collect_paths(
    tree: &Tree<'_>,
    shown_as: &Path,
    paths: &mut BTreeSet<PathBuf>,
) -> Result<(), git2::Error> {
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() != Some(ObjectType::Tree) {
            paths.insert(shown_as.join(dir).join(path_from_bytes(entry.name_bytes())));
        }
        TreeWalkResult::Ok
    })
}

/// The tree of the working directory under `prefix`, built in the repository's index
/// held in memory. Files of `keep` (the starting tree) that still exist are kept even if
/// a `.gitignore` written since hides them: they are unchanged, not deleted.
/// Directories libgit2 cannot walk are added to `unreachable` and kept out of the tree.
///
/// They are looked for before every build, not only after a failed one: libgit2 fails
/// on a directory too deep, but it passes over a path too long without a word (it counts
/// the entry as unreadable), so a change below one would vanish from the patch unnoticed.
fn snapshot_tree(
    repo: &Repository,
    workdir: &Path,
    prefix: &Path,
    keep: Option<&Tree<'_>>,
    unreachable: &mut Vec<Unreachable>,
) -> Result<BuiltTree, DiffError> {
    let mut looked = false;
    loop {
        let found: Vec<Unreachable> = find_unreachable(repo, workdir)
            .into_iter()
            .filter(|dir| !unreachable.contains(dir))
            .collect();
        if !found.is_empty() {
            tracing::warn!(
                count = found.len(),
                "directories git cannot walk are left out of the diff"
            );
        }
        unreachable.extend(found);
        for dir in unreachable.iter() {
            if let Some(rule) = ignore_rule(&dir.path) {
                repo.add_ignore_rule(&rule).map_err(|source| {
                    git_error("keep a directory out of the walk", workdir, source)
                })?;
            }
        }
        match build_tree(repo, workdir, prefix, keep) {
            Ok(built) => return Ok(built),
            // The work tree changed between the look and the build (a command still
            // running): look once more.
            Err(error) if !looked => {
                looked = true;
                tracing::warn!(%error, "building the work tree's state failed; trying again");
            }
            Err(error) => return Err(error),
        }
    }
}

fn build_tree(
    repo: &Repository,
    workdir: &Path,
    prefix: &Path,
    keep: Option<&Tree<'_>>,
) -> Result<BuiltTree, DiffError> {
    let context = |action: &'static str| move |source| git_error(action, workdir, source);
    let mut index = repo.index().map_err(context("read the index"))?;
    // The callbacks skip (1) paths outside the root, so only the root's files are read.
    let mut under_root = |path: &Path, _: &[u8]| i32::from(!path.starts_with(prefix));
    // An untracked nested repository comes as a directory path (`dep/`), which libgit2
    // refuses to add; it is skipped and named.
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
        keep_starting_files(&mut index, keep, workdir, prefix)
            .map_err(context("add a starting file"))?;
    }
    resolve_conflicts(&mut index, workdir).map_err(context("resolve index conflicts"))?;
    let tree = index
        .write_tree_to(repo)
        .map_err(context("write the tree"))?;
    nested.extend(initialised_submodules(repo, workdir, prefix));
    let mut nested: Vec<PathBuf> = nested
        .into_iter()
        .filter_map(|path| {
            let path = PathBuf::from(path.to_string_lossy().trim_end_matches('/'));
            path.strip_prefix(prefix).ok().map(Path::to_path_buf)
        })
        .filter(|path| !path.as_os_str().is_empty())
        .collect();
    nested.sort();
    nested.dedup();
    Ok(BuiltTree {
        id: subtree(repo, workdir, tree, prefix)?,
        nested,
    })
}

/// Adds the files of `keep` still on disk that the index does not hold (hidden by a
/// `.gitignore` written since).
fn keep_starting_files(
    index: &mut git2::Index,
    keep: &Tree<'_>,
    workdir: &Path,
    prefix: &Path,
) -> Result<(), git2::Error> {
    let mut kept = Vec::new();
    keep.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(ObjectType::Blob) {
            kept.push(prefix.join(dir).join(path_from_bytes(entry.name_bytes())));
        }
        TreeWalkResult::Ok
    })?;
    for path in kept {
        let on_disk = workdir
            .join(&path)
            .symlink_metadata()
            .is_ok_and(|meta| !meta.is_dir());
        if on_disk && index.get_path(&path, 0).is_none() {
            index.add_path(&path)?;
        }
    }
    Ok(())
}

/// Submodules under `prefix` whose work tree is checked out (relative to the work tree).
fn initialised_submodules(repo: &Repository, workdir: &Path, prefix: &Path) -> Vec<PathBuf> {
    let Ok(submodules) = repo.submodules() else {
        return Vec::new();
    };
    submodules
        .iter()
        .map(|submodule| submodule.path().to_path_buf())
        .filter(|path| path.starts_with(prefix) && workdir.join(path).join(".git").exists())
        .collect()
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
    a_prefix: &str,
    b_prefix: &str,
) -> Result<String, git2::Error> {
    let mut options = DiffOptions::new();
    options
        .show_binary(true)
        .force_binary(true)
        .disable_pathspec_match(true)
        .old_prefix(a_prefix)
        .new_prefix(b_prefix)
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
