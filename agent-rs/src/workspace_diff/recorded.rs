//! A file as recorded at the start of a run, for the modes that keep starting contents
//! themselves (the plain folder, and files the agent's tools changed outside git's view):
//! its mode, its git blob id, and its bytes, kept in memory while they are small and, for
//! text, copied to a spill folder on disk (outside the workspace) when they are not. So a
//! changed 50 MB text file still gets a real patch. A large binary file is recorded by id
//! alone: its new content goes in the patch whole, which needs no old bytes. Only a new
//! content past `max_patch_file_bytes` is listed as left out.

use std::borrow::Cow;
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use git2::{ObjectType, Oid};

use super::patch_writer::{
    FileChange, MODE_EXECUTABLE, MODE_REGULAR, MODE_SYMLINK, Side, write_section,
};
use super::{DiffError, LeftOut, SnapshotLimits, WorkspaceDiff};

/// Where a recorded file's bytes are.
#[derive(Debug)]
pub(super) enum Kept {
    Memory(Vec<u8>),
    Spilled(PathBuf),
    /// Too large to keep: only the blob id is known.
    Nowhere,
}

/// One file as recorded.
#[derive(Debug)]
pub(super) struct Recorded {
    pub mode: u32,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub oid: Oid,
    pub kept: Kept,
}

/// Keeps recorded bytes within the memory and disk bounds of [`SnapshotLimits`].
#[derive(Debug)]
pub(super) struct ContentStore {
    limits: SnapshotLimits,
    memory_used: u64,
    spill_used: u64,
    spill: Option<tempfile::TempDir>,
    spilled_files: u64,
}

impl ContentStore {
    pub fn new(limits: SnapshotLimits) -> Self {
        Self {
            limits,
            memory_used: 0,
            spill_used: 0,
            spill: None,
            spilled_files: 0,
        }
    }

    /// The spill folder, once one exists (the walks leave it out if it is inside the
    /// workspace).
    pub fn spill_dir(&self) -> Option<&Path> {
        self.spill.as_ref().map(tempfile::TempDir::path)
    }

    /// Records the file at `path`. `None` when it vanished meanwhile.
    pub fn record(&mut self, path: &Path, metadata: &Metadata) -> io::Result<Option<Recorded>> {
        let mode = mode_of(metadata);
        let size = metadata.len();
        let modified = metadata.modified().ok();
        let found = |oid, kept| {
            Ok(Some(Recorded {
                mode,
                size,
                modified,
                oid,
                kept,
            }))
        };
        if mode == MODE_SYMLINK {
            let target = match std::fs::read_link(path) {
                Ok(target) => patch_path(&target),
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(error),
            };
            return found(blob_id(&target)?, Kept::Memory(target));
        }
        let limits = self.limits;
        if size <= limits.max_file_bytes && self.memory_used + size <= limits.max_total_bytes {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(error),
            };
            self.memory_used += bytes.len() as u64;
            return found(blob_id(&bytes)?, Kept::Memory(bytes));
        }
        // Only text is worth a copy: a binary file's new content is carried whole (a
        // literal), which `git apply` checks against the old blob id alone.
        if size <= limits.max_patch_file_bytes
            && self.spill_used + size <= limits.max_spill_bytes
            && looks_like_text(path)?
        {
            match self.spill_copy(path) {
                Ok(Some((copy, copied))) => {
                    self.spill_used += copied;
                    return found(file_id(&copy)?, Kept::Spilled(copy));
                }
                Ok(None) => return Ok(None),
                // A full disk: fall back to the id alone.
                Err(error) => tracing::warn!(path = %path.display(), %error,
                    "could not copy a large file aside; a change to it will be left out"),
            }
        }
        match file_id(path) {
            Ok(oid) => found(oid, Kept::Nowhere),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn spill_copy(&mut self, path: &Path) -> io::Result<Option<(PathBuf, u64)>> {
        if self.spill.is_none() {
            self.spill = Some(
                tempfile::Builder::new()
                    .prefix("agent-rs-snapshot-")
                    .tempdir()?,
            );
        }
        let Some(dir) = self.spill.as_ref() else {
            return Ok(None);
        };
        self.spilled_files += 1;
        let copy = dir.path().join(self.spilled_files.to_string());
        match std::fs::copy(path, &copy) {
            Ok(copied) => Ok(Some((copy, copied))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The current state of a file at diff time: its bytes when it is not too large to
    /// put in a patch. Never kept, never counted against the bounds.
    pub fn current(&self, path: &Path, metadata: &Metadata) -> io::Result<Option<Recorded>> {
        let mode = mode_of(metadata);
        let recorded = |oid, kept| Recorded {
            mode,
            size: metadata.len(),
            modified: metadata.modified().ok(),
            oid,
            kept,
        };
        let bytes = if mode == MODE_SYMLINK {
            std::fs::read_link(path).map(|target| patch_path(&target))
        } else if metadata.len() <= self.limits.max_patch_file_bytes {
            std::fs::read(path)
        } else {
            return match file_id(path) {
                Ok(oid) => Ok(Some(recorded(oid, Kept::Nowhere))),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error),
            };
        };
        match bytes {
            Ok(bytes) => Ok(Some(recorded(blob_id(&bytes)?, Kept::Memory(bytes)))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Whether a file's start has no NUL byte (git's test for text).
fn looks_like_text(path: &Path) -> io::Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8000);
    match std::fs::File::open(path) {
        Ok(file) => file.take(8000).read_to_end(&mut head)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    Ok(!head.contains(&0))
}

/// The bytes of a recorded file, loaded from wherever they are kept.
fn load(recorded: &Recorded) -> io::Result<Option<Cow<'_, [u8]>>> {
    Ok(match &recorded.kept {
        Kept::Memory(bytes) => Some(Cow::Borrowed(bytes)),
        Kept::Spilled(copy) => Some(Cow::Owned(std::fs::read(copy)?)),
        Kept::Nowhere => None,
    })
}

/// Writes the sections for `path` (the bytes the patch names it by) going from `old` to
/// `new`, or lists it in `diff.left_out` when the patch cannot carry it.
pub(super) fn write_change(
    diff: &mut WorkspaceDiff,
    path: &[u8],
    old: Option<&Recorded>,
    new: Option<&Recorded>,
) -> Result<(), DiffError> {
    let old_bytes = old
        .map(load)
        .transpose()
        .map_err(|source| spill_error(path, source))?;
    let new_bytes = new
        .map(load)
        .transpose()
        .map_err(|source| spill_error(path, source))?;
    let changes = match (old, new) {
        (None, None) => vec![],
        (None, Some(new)) => vec![FileChange::Added(side(new, &new_bytes))],
        (Some(old), None) => vec![FileChange::Deleted(side(old, &old_bytes))],
        (Some(old), Some(new)) if old.oid == new.oid && old.mode == new.mode => vec![],
        // A symlink replaced by a file (or back) is a delete plus an add, as in git.
        (Some(old), Some(new)) if (old.mode == MODE_SYMLINK) != (new.mode == MODE_SYMLINK) => {
            vec![
                FileChange::Deleted(side(old, &old_bytes)),
                FileChange::Added(side(new, &new_bytes)),
            ]
        }
        (Some(old), Some(new)) => vec![FileChange::Modified {
            old: side(old, &old_bytes),
            new: side(new, &new_bytes),
        }],
    };
    let mut written = false;
    for change in &changes {
        let stats = write_section(&mut diff.patch, path, change)?;
        diff.insertions += stats.insertions;
        diff.deletions += stats.deletions;
        match stats.left_out {
            Some(reason) => diff
                .left_out
                .push(LeftOut::new(&String::from_utf8_lossy(path), &reason)),
            None => written = true,
        }
    }
    if written {
        diff.files_changed += 1;
    }
    Ok(())
}

/// One side of a change: the recorded facts and the bytes loaded for it.
fn side<'a>(recorded: &Recorded, bytes: &'a Option<Option<Cow<'_, [u8]>>>) -> Side<'a> {
    Side {
        mode: recorded.mode,
        oid: recorded.oid,
        content: bytes.as_ref().and_then(|bytes| bytes.as_deref()),
    }
}

fn spill_error(path: &[u8], source: io::Error) -> DiffError {
    DiffError::Io {
        path: PathBuf::from(String::from_utf8_lossy(path).into_owned()),
        source,
    }
}

pub(super) fn mode_of(metadata: &Metadata) -> u32 {
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

fn blob_id(bytes: &[u8]) -> io::Result<Oid> {
    Oid::hash_object(ObjectType::Blob, bytes)
        .map_err(|error| io::Error::other(error.message().to_owned()))
}

fn file_id(path: &Path) -> io::Result<Oid> {
    // libgit2 says "not found" in its own words; check first so callers can tell.
    std::fs::symlink_metadata(path)?;
    Oid::hash_file(ObjectType::Blob, path)
        .map_err(|error| io::Error::other(error.message().to_owned()))
}

/// A relative path as the `/`-separated bytes git writes (raw bytes on Unix, so names
/// that are not UTF-8 survive through the quoting).
pub(super) fn patch_path(path: &Path) -> Vec<u8> {
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
