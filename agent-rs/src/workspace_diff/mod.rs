//! The agent's `diff.patch`: every change made to the workspace since the run started,
//! as a git-format patch that `git apply` applies to an untouched copy of the starting
//! state. The agent loop captures a [`WorkspaceSnapshot`] before the first turn and asks
//! it for a [`WorkspaceDiff`] at the end, whether the run finished or a limit stopped it.
//!
//! Two modes, chosen at capture:
//! - inside a git work tree (`git_repo`): the starting state is a git tree built from the
//!   working directory, so uncommitted changes the user already had are not counted as
//!   the agent's; libgit2 writes the patch, binary files as `GIT binary patch`;
//! - anywhere else (`plain_folder`): the starting files are kept in memory and the patch
//!   is written by hand (`patch_writer`) with `similar` for the line diffs.
//!
//! In both, ignored files (`.gitignore`) are out of scope, empty directories do not
//! exist, symlinks are diffed as symlinks, and renames appear as a delete plus an add.
//! A starting file that a `.gitignore` written during the run hides is still diffed (it
//! is not reported deleted); the reverse is not tracked: a file ignored at the start and
//! un-ignored since appears as a new file, which `git apply` refuses on a copy that has
//! it. In the git mode, each repository nested in the work tree (an untracked clone, a
//! submodule) is diffed on its own and its sections put under its path; a plain folder
//! skips only `.git` folders, so nested repositories' files are ordinary files there.
//!
//! Two rules hold whatever the workspace: every file the agent's file tools changed is in
//! the patch (ignored or not, see `touched`), and the patch always applies whole. What
//! it cannot carry (a file too large to diff, a directory too deep or too long to read, a
//! repository created during the run) is left out of it and listed in
//! [`WorkspaceDiff::left_out`], never written as a section `git apply` would refuse.

mod git_reach;
mod git_repo;
mod patch_writer;
mod plain_folder;
mod recorded;
mod touched;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use git_repo::{GitSnapshot, NotGit};
use plain_folder::PlainSnapshot;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use touched::TouchedFiles;

/// How deep repositories nested in repositories are followed.
const MAX_NESTING: usize = 4;

/// The starting state of a workspace, to diff the current state against.
#[derive(Debug)]
pub struct WorkspaceSnapshot {
    root: PathBuf,
    state: StartingState,
    /// Repositories nested in a git root, each with its place relative to the root.
    nested: Vec<(PathBuf, StartingState)>,
    /// What could not be recorded of the nested repositories, for the result.
    nested_left_out: Vec<LeftOut>,
    touched: TouchedFiles,
    /// When the capture began: what changed after it was changed by the run.
    started: std::time::SystemTime,
}

#[derive(Debug)]
enum StartingState {
    Git(GitSnapshot),
    Plain(PlainSnapshot),
}

/// How a workspace's starting state was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// A git tree in the enclosing repository's object database.
    Git,
    /// File contents held in memory.
    PlainFolder,
}

/// Bounds of what the plain-folder mode (and the record of files the tools changed)
/// keeps; the git mode keeps its state in the object database and needs none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// Files up to this size are kept in memory.
    pub max_file_bytes: u64,
    /// Once this much content is held in memory, further files are copied to disk.
    pub max_total_bytes: u64,
    /// At most this much text is copied to a spill folder on disk (under the system's temp
    /// directory); past it (and for binary files) files are recorded by size, mtime and
    /// blob id only, and a change is carried as the new content whole.
    pub max_spill_bytes: u64,
    /// The largest file diffed into the patch (both of its versions are read into
    /// memory); a change to a larger one is listed in [`WorkspaceDiff::left_out`].
    pub max_patch_file_bytes: u64,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 << 20,
            max_total_bytes: 512 << 20,
            max_spill_bytes: 2 << 30,
            max_patch_file_bytes: 512 << 20,
        }
    }
}

/// All changes from the starting state to the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceDiff {
    /// A git-format patch; empty when nothing changed.
    pub patch: String,
    pub files_changed: usize,
    pub insertions: usize,
    pub deletions: usize,
    /// Changes the patch does not carry, and why; the patch applies without them.
    pub left_out: Vec<LeftOut>,
}

/// A change (or a part of the workspace) left out of the patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeftOut {
    /// Relative to the workspace root; a very long one is shortened in its middle.
    pub path: String,
    pub reason: String,
}

/// Paths longer than this are shown by their two ends.
const SHOWN_PATH_BYTES: usize = 240;

impl LeftOut {
    pub fn new(path: &str, reason: &str) -> Self {
        Self {
            path: shorten(path),
            reason: reason.to_string(),
        }
    }
}

/// `path` whole when short, else its start and end around the count of what is cut.
fn shorten(path: &str) -> String {
    if path.len() <= SHOWN_PATH_BYTES {
        return path.to_string();
    }
    let head = path.floor_char_boundary(SHOWN_PATH_BYTES / 2);
    let tail = path.ceil_char_boundary(path.len() - SHOWN_PATH_BYTES / 2);
    format!(
        "{}[… {} bytes …]{}",
        &path[..head],
        tail - head,
        &path[tail..]
    )
}

/// Why the workspace could not be recorded or diffed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("workspace root `{path}` is not a readable directory: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read `{path}` while diffing the workspace: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("git could not {action} for the workspace in `{path}`: {source}")]
    Git {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("cannot encode the binary file `{path}` for the patch: {message}")]
    BinaryEncoding { path: String, message: String },
}

impl WorkspaceSnapshot {
    /// Records the starting state of `root`; called before the agent runs.
    pub fn capture(root: &Path) -> Result<Self, DiffError> {
        Self::capture_with_limits(root, SnapshotLimits::default())
    }

    /// [`capture`](Self::capture) with explicit bounds.
    pub fn capture_with_limits(root: &Path, limits: SnapshotLimits) -> Result<Self, DiffError> {
        let root_error = |source| DiffError::Root {
            path: root.to_path_buf(),
            source,
        };
        let started = std::time::SystemTime::now();
        let root = root.canonicalize().map_err(root_error)?;
        if !root.is_dir() {
            return Err(root_error(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        let state = StartingState::capture(&root, limits)?;
        let mut snapshot = Self {
            touched: TouchedFiles::new(&root, limits),
            root,
            state,
            nested: Vec::new(),
            nested_left_out: Vec::new(),
            started,
        };
        snapshot.capture_nested(limits);
        Ok(snapshot)
    }

    /// Records each repository nested in a git root (and those nested in them).
    fn capture_nested(&mut self, limits: SnapshotLimits) {
        let mut pending: Vec<(PathBuf, usize)> = self
            .state
            .nested()
            .iter()
            .map(|path| (path.clone(), 1))
            .collect();
        while let Some((relative, depth)) = pending.pop() {
            if depth > MAX_NESTING {
                self.nested_left_out.push(LeftOut::new(
                    &relative.to_string_lossy(),
                    "a repository nested too many levels deep; its files are not in the patch",
                ));
                continue;
            }
            match StartingState::capture(&self.root.join(&relative), limits) {
                Ok(state) => {
                    pending.extend(
                        state
                            .nested()
                            .iter()
                            .map(|inner| (relative.join(inner), depth + 1)),
                    );
                    self.nested.push((relative, state));
                }
                Err(error) => self.nested_left_out.push(LeftOut::new(
                    &relative.to_string_lossy(),
                    &format!("a nested repository that could not be recorded: {error}"),
                )),
            }
        }
    }

    /// Called before the agent's file tools change `path` (absolute, inside the root):
    /// keeps what is there now, so the change is in the patch even where the snapshot
    /// does not look (ignored files).
    pub fn record_original(&self, path: &Path) {
        // A file the starting state holds is diffed anyway: no second copy of it.
        if let Ok(relative) = path.strip_prefix(&self.root)
            && self.held_at_start(relative)
        {
            return;
        }
        self.touched.record(path);
    }

    /// Whether the starting state (the root's, or a nested repository's) holds `relative`.
    fn held_at_start(&self, relative: &Path) -> bool {
        let nested = self
            .nested
            .iter()
            .filter(|(prefix, _)| relative.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.components().count());
        match nested {
            Some((prefix, state)) => relative
                .strip_prefix(prefix)
                .is_ok_and(|inner| state.holds(inner)),
            None => self.state.holds(relative),
        }
    }

    /// The changes from the starting state to the current state of the root.
    pub fn diff(&self) -> Result<WorkspaceDiff, DiffError> {
        let mut diff = WorkspaceDiff::default();
        let mut covered = BTreeSet::new();
        let nested_now = self
            .state
            .diff_into(&mut diff, Path::new(""), &mut covered)?;
        let mut known: BTreeSet<PathBuf> =
            self.nested.iter().map(|(path, _)| path.clone()).collect();
        for (relative, state) in &self.nested {
            match state.diff_into(&mut diff, relative, &mut covered) {
                Ok(inner) => known.extend(inner.into_iter().map(|path| relative.join(path))),
                Err(error) => diff.left_out.push(LeftOut::new(
                    &relative.to_string_lossy(),
                    &format!("a nested repository whose changes could not be read: {error}"),
                )),
            }
        }
        for created in nested_now.iter().filter(|path| !known.contains(*path)) {
            diff.left_out.push(LeftOut::new(
                &created.to_string_lossy(),
                "a git repository created during the run (git init or git clone); its files \
                 are not in the patch",
            ));
        }
        self.touched.diff_uncovered(&mut diff, &covered)?;
        diff.left_out.extend(self.nested_left_out.iter().cloned());
        diff.left_out.sort_by(|a, b| a.path.cmp(&b.path));
        diff.left_out.dedup_by(|a, b| a.path == b.path);
        Ok(diff)
    }

    /// When the capture began.
    pub fn started(&self) -> std::time::SystemTime {
        self.started
    }

    /// The canonical root this snapshot covers.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn kind(&self) -> SnapshotKind {
        match self.state {
            StartingState::Git(_) => SnapshotKind::Git,
            StartingState::Plain(_) => SnapshotKind::PlainFolder,
        }
    }
}

/// The agent's file tools tell the snapshot before they change a file.
impl tools::WriteObserver for WorkspaceSnapshot {
    fn before_write(&self, path: &Path) {
        self.record_original(path);
    }
}

impl StartingState {
    fn capture(root: &Path, limits: SnapshotLimits) -> Result<Self, DiffError> {
        match GitSnapshot::capture(root) {
            Ok(Ok(git)) => return Ok(Self::Git(git)),
            Ok(Err(NotGit::NoRepository)) => {}
            Ok(Err(NotGit::Unusable(reason))) => {
                tracing::warn!(root = %root.display(), %reason,
                    "git repository found but not usable; diffing as a plain folder");
            }
            // The folder is still diffable without git's help.
            Err(error) => {
                tracing::warn!(root = %root.display(), %error,
                    "git could not record the work tree; diffing as a plain folder");
            }
        }
        Ok(Self::Plain(PlainSnapshot::capture(root, limits)?))
    }

    /// Whether the starting state holds the file at `relative`.
    fn holds(&self, relative: &Path) -> bool {
        match self {
            Self::Git(git) => git.holds(relative),
            Self::Plain(plain) => plain.holds(relative),
        }
    }

    /// Repositories nested in this root (relative to it); none for a plain folder.
    fn nested(&self) -> &[PathBuf] {
        match self {
            Self::Git(git) => git.nested(),
            Self::Plain(_) => &[],
        }
    }

    fn diff_into(
        &self,
        diff: &mut WorkspaceDiff,
        shown_as: &Path,
        covered: &mut BTreeSet<PathBuf>,
    ) -> Result<Vec<PathBuf>, DiffError> {
        match self {
            Self::Git(git) => git.diff_into(diff, shown_as, covered),
            Self::Plain(plain) => {
                plain.diff_into(diff, shown_as, covered)?;
                Ok(Vec::new())
            }
        }
    }
}
