//! The plain-folder mode: a workspace that is not inside a git work tree. The starting
//! state is kept in memory (file bytes up to a per-file and a total cap; larger files
//! only by size, mtime and git blob id), and the patch is written by `patch_writer`.
//!
//! The walk follows git's view of a folder: `.gitignore` files are honoured (even with no
//! repository), hidden files are included, `.git` folders at any depth are skipped, empty
//! directories do not exist. Symlinks are not followed; each is recorded as a symlink
//! (mode 120000, its target as content), exactly as git stores one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use git2::{ObjectType, Oid};
use ignore::WalkBuilder;

use super::patch_writer::{
    FileChange, MODE_EXECUTABLE, MODE_REGULAR, MODE_SYMLINK, Side, write_section,
};
use super::{DiffError, SnapshotLimits, WorkspaceDiff};

/// The starting state of a plain folder.
#[derive(Debug)]
pub(super) struct PlainSnapshot {
    root: PathBuf,
    files: BTreeMap<PathBuf, Recorded>,
    limits: SnapshotLimits,
}

/// One file as recorded: always its id, its bytes when they fitted under the caps.
#[derive(Debug)]
struct Recorded {
    mode: u32,
    size: u64,
    modified: Option<SystemTime>,
    oid: Oid,
    content: Option<Vec<u8>>,
}

impl Recorded {
    fn side(&self) -> Side<'_> {
        Side {
            mode: self.mode,
            oid: self.oid,
            content: self.content.as_deref(),
        }
    }
}

impl PlainSnapshot {
    pub(super) fn capture(root: &Path, limits: SnapshotLimits) -> Result<Self, DiffError> {
        let mut kept_bytes = 0u64;
        let mut files = BTreeMap::new();
        for (relative, metadata) in list_files(root)? {
            let cap = limits
                .max_file_bytes
                .min(limits.max_total_bytes.saturating_sub(kept_bytes));
            if let Some(recorded) = record(root, &relative, &metadata, cap)? {
                kept_bytes += recorded
                    .content
                    .as_ref()
                    .map_or(0, |bytes| bytes.len() as u64);
                files.insert(relative, recorded);
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            files,
            limits,
        })
    }

    pub(super) fn diff(&self) -> Result<WorkspaceDiff, DiffError> {
        let mut listed = list_files(&self.root)?;
        // A starting file that the walk no longer lists but that is still there was only
        // hidden by a `.gitignore` written since: it is unchanged, not deleted.
        for relative in self.files.keys() {
            if !listed.contains_key(relative)
                && let Ok(metadata) = self.root.join(relative).symlink_metadata()
                && !metadata.is_dir()
            {
                listed.insert(relative.clone(), metadata);
            }
        }
        let paths: BTreeSet<&PathBuf> = self.files.keys().chain(listed.keys()).collect();
        let mut diff = WorkspaceDiff::default();
        for relative in paths {
            let old = self.files.get(relative);
            let new = match listed.get(relative) {
                Some(metadata) => self.current(relative, metadata, old)?,
                None => None,
            };
            self.write_path(&mut diff, relative, old, new)?;
        }
        Ok(diff)
    }

    /// The current state of a listed file, reusing the recorded one when size and mtime
    /// say an over-cap file is untouched (as git's stat cache does).
    fn current(
        &self,
        relative: &Path,
        metadata: &Metadata,
        old: Option<&Recorded>,
    ) -> Result<Option<Recorded>, DiffError> {
        if let Some(old) = old
            && old.content.is_none()
            && old.mode == mode_of(metadata)
            && old.size == metadata.len()
            && old.modified.is_some()
            && old.modified == metadata.modified().ok()
        {
            return Ok(Some(Recorded {
                content: None,
                ..*old
            }));
        }
        record(&self.root, relative, metadata, self.limits.max_file_bytes)
    }

    fn write_path(
        &self,
        diff: &mut WorkspaceDiff,
        relative: &Path,
        old: Option<&Recorded>,
        new: Option<Recorded>,
    ) -> Result<(), DiffError> {
        let path = patch_path(relative);
        let changes = match (old, &new) {
            (None, None) => vec![],
            (None, Some(new)) => vec![FileChange::Added(new.side())],
            (Some(old), None) => vec![FileChange::Deleted(old.side())],
            (Some(old), Some(new)) if old.oid == new.oid && old.mode == new.mode => vec![],
            // A symlink replaced by a file (or back) is a delete plus an add, as in git.
            (Some(old), Some(new)) if (old.mode == MODE_SYMLINK) != (new.mode == MODE_SYMLINK) => {
                vec![
                    FileChange::Deleted(old.side()),
                    FileChange::Added(new.side()),
                ]
            }
            (Some(old), Some(new)) => {
                vec![FileChange::Modified {
                    old: old.side(),
                    new: new.side(),
                }]
            }
        };
        for change in &changes {
            let stats = write_section(&mut diff.patch, &path, change)?;
            diff.insertions += stats.insertions;
            diff.deletions += stats.deletions;
            diff.notes.extend(stats.note);
        }
        if !changes.is_empty() {
            diff.files_changed += 1;
        }
        Ok(())
    }
}

/// Every file and symlink under `root` that git would see, by relative path.
fn list_files(root: &Path) -> Result<BTreeMap<PathBuf, Metadata>, DiffError> {
    let walk = WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    let mut files = BTreeMap::new();
    for entry in walk {
        let entry = entry.map_err(|source| DiffError::Walk {
            root: root.to_path_buf(),
            source,
        })?;
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if !(file_type.is_file() || file_type.is_symlink()) {
            continue;
        }
        let metadata = entry
            .path()
            .symlink_metadata()
            .map_err(|source| DiffError::Io {
                path: entry.path().to_path_buf(),
                source,
            })?;
        if let Ok(relative) = entry.path().strip_prefix(root) {
            files.insert(relative.to_path_buf(), metadata);
        }
    }
    Ok(files)
}

/// Reads one file (bytes kept when within `cap`). `None` when it vanished meanwhile.
fn record(
    root: &Path,
    relative: &Path,
    metadata: &Metadata,
    cap: u64,
) -> Result<Option<Recorded>, DiffError> {
    let path = root.join(relative);
    let io_error = |source: io::Error| DiffError::Io {
        path: path.clone(),
        source,
    };
    let mode = mode_of(metadata);
    let content = if mode == MODE_SYMLINK {
        match std::fs::read_link(&path) {
            Ok(target) => Some(patch_path(&target)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(error)),
        }
    } else if metadata.len() <= cap {
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(error)),
        }
    } else {
        None
    };
    let oid = match &content {
        Some(bytes) => Oid::hash_object(ObjectType::Blob, bytes),
        None => Oid::hash_file(ObjectType::Blob, &path),
    }
    .map_err(|source| io_error(io::Error::other(source.message().to_owned())))?;
    Ok(Some(Recorded {
        mode,
        size: metadata.len(),
        modified: metadata.modified().ok(),
        oid,
        content,
    }))
}

fn mode_of(metadata: &Metadata) -> u32 {
    if metadata.file_type().is_symlink() {
        return MODE_SYMLINK;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o111 != 0 {
            return MODE_EXECUTABLE;
        }
    }
    MODE_REGULAR
}

/// A relative path as the `/`-separated bytes git writes (raw bytes on Unix, so names
/// that are not UTF-8 survive through the quoting).
fn patch_path(path: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().replace('\\', "/").into_bytes()
    }
}
