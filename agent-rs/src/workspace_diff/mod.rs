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
//! it. In the git mode, submodules and repositories nested in the work tree are left
//! out (the nested ones named in the notes); a plain folder skips only `.git` folders.

mod git_repo;
mod patch_writer;
mod plain_folder;

use std::io;
use std::path::{Path, PathBuf};

use git_repo::{GitSnapshot, NotGit};
use plain_folder::PlainSnapshot;

/// The starting state of a workspace, to diff the current state against.
#[derive(Debug)]
pub struct WorkspaceSnapshot {
    root: PathBuf,
    state: StartingState,
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

/// Memory bounds of the plain-folder mode (the git mode keeps its state in the object
/// database and needs none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// Files larger than this are recorded by size, mtime and blob id only; their content
    /// is never put in the patch (a changed one is reported in [`WorkspaceDiff::notes`]).
    pub max_file_bytes: u64,
    /// Once this much content is held, further files are recorded like oversized ones.
    pub max_total_bytes: u64,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 << 20,
            max_total_bytes: 512 << 20,
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
    /// Files whose change the patch describes but cannot carry (so `git apply` fails on
    /// them), one sentence each, for the run's result and log.
    pub notes: Vec<String>,
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
    #[error("cannot list the workspace `{root}`: {source}")]
    Walk {
        root: PathBuf,
        #[source]
        source: ignore::Error,
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

    /// [`capture`](Self::capture) with explicit plain-folder memory bounds.
    pub fn capture_with_limits(root: &Path, limits: SnapshotLimits) -> Result<Self, DiffError> {
        let root_error = |source| DiffError::Root {
            path: root.to_path_buf(),
            source,
        };
        let root = root.canonicalize().map_err(root_error)?;
        if !root.is_dir() {
            return Err(root_error(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        let state = match GitSnapshot::capture(&root)? {
            Ok(git) => StartingState::Git(git),
            Err(reason) => {
                if let NotGit::Unusable(reason) = reason {
                    tracing::warn!(root = %root.display(), %reason,
                        "git repository found but not usable; diffing as a plain folder");
                }
                StartingState::Plain(PlainSnapshot::capture(&root, limits)?)
            }
        };
        Ok(Self { root, state })
    }

    /// The changes from the starting state to the current state of the root.
    pub fn diff(&self) -> Result<WorkspaceDiff, DiffError> {
        match &self.state {
            StartingState::Git(git) => git.diff(),
            StartingState::Plain(plain) => plain.diff(),
        }
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
