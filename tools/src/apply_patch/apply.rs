//! Carrying out the parsed operations on disk, one after the other.
//!
//! Every path was resolved through the workspace jail before this runs, so nothing here
//! decides what may be touched. Operations are applied in patch order and are not rolled
//! back: like codex, a failure leaves the earlier operations applied (the conformance
//! scenario `015_failure_after_partial_success_leaves_changes` pins this), and the error
//! says which ones, so the model resends only what is left.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::parser::{Chunk, FileOp};
use super::seek::Fuzz;
use super::update::{HunkMismatch, apply_chunks};

/// A parsed operation with its paths resolved inside the workspace.
#[derive(Debug, Clone)]
pub struct ResolvedOp {
    pub op: FileOp,
    /// The real file (symlinks inside the workspace followed): what is read and written.
    pub target: PathBuf,
    /// The directory entry itself (a symlink stays a symlink): what is removed.
    pub entry: PathBuf,
    /// How the path is shown to the model.
    pub display: String,
    /// For a move: where the file goes, and how that is shown.
    pub move_to: Option<(PathBuf, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Updated,
    Deleted,
}

/// One operation that was carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedChange {
    pub kind: ChangeKind,
    /// Where the file is now (the destination of a move).
    pub path: String,
    pub moved_from: Option<String>,
    pub added_lines: usize,
    pub removed_lines: usize,
    /// The loosest comparison an update's hunks needed.
    pub fuzz: Fuzz,
}

/// Why one operation could not be carried out.
#[derive(Debug)]
pub enum OpError {
    Mismatch {
        path: String,
        mismatch: HunkMismatch,
    },
    UpdateMissing {
        path: String,
    },
    DeleteMissing {
        path: String,
    },
    IsDirectory {
        path: String,
    },
    NotText {
        path: String,
    },
    TooLarge {
        path: String,
        bytes: u64,
        limit: u64,
    },
    Io {
        action: &'static str,
        path: String,
        source: io::Error,
    },
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Mismatch { path, mismatch } => write!(
                f,
                "in `{path}`, {}\nRead the file again and copy the context and `-` lines \
                 exactly as they are in it.",
                mismatch.to_string().trim_end()
            ),
            OpError::UpdateMissing { path } => write!(
                f,
                "cannot update `{path}`: the file does not exist; use `*** Add File: {path}` \
                 to create it"
            ),
            OpError::DeleteMissing { path } => {
                write!(f, "cannot delete `{path}`: the file does not exist")
            }
            OpError::IsDirectory { path } => write!(
                f,
                "`{path}` is a directory; patches add, update and delete files only"
            ),
            OpError::NotText { path } => write!(
                f,
                "cannot update `{path}`: it is not UTF-8 text; patches only edit text files"
            ),
            OpError::TooLarge { path, bytes, limit } => write!(
                f,
                "cannot update `{path}`: it is {bytes} bytes, more than the {limit} bytes \
                 the edit tools load"
            ),
            OpError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} `{path}`: {source}"),
        }
    }
}

/// An operation failed after `applied` ones had succeeded.
#[derive(Debug)]
pub struct ApplyFailure {
    pub applied: Vec<AppliedChange>,
    /// 1-based index of the failed operation, and its header line in the patch.
    pub op_index: usize,
    pub patch_line: usize,
    pub error: OpError,
}

/// Applies the operations in order, stopping at the first that fails.
pub fn apply_all(
    ops: Vec<ResolvedOp>,
    max_file_bytes: u64,
) -> Result<Vec<AppliedChange>, Box<ApplyFailure>> {
    let mut applied = Vec::with_capacity(ops.len());
    for (index, op) in ops.into_iter().enumerate() {
        let patch_line = op.op.line();
        match apply_one(op, max_file_bytes) {
            Ok(change) => applied.push(change),
            Err(error) => {
                return Err(Box::new(ApplyFailure {
                    applied,
                    op_index: index + 1,
                    patch_line,
                    error,
                }));
            }
        }
    }
    Ok(applied)
}

fn apply_one(op: ResolvedOp, max_file_bytes: u64) -> Result<AppliedChange, OpError> {
    let ResolvedOp {
        op,
        target,
        entry,
        display,
        move_to,
    } = op;
    match op {
        FileOp::Add { contents, .. } => {
            refuse_directory(&target, &display)?;
            write_file(&target, &display, contents.as_bytes())?;
            Ok(AppliedChange {
                kind: ChangeKind::Added,
                path: display,
                moved_from: None,
                added_lines: contents.lines().count(),
                removed_lines: 0,
                fuzz: Fuzz::Exact,
            })
        }
        FileOp::Delete { .. } => {
            match std::fs::symlink_metadata(&entry) {
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(OpError::DeleteMissing { path: display });
                }
                Err(source) => return Err(io_error("inspect", &display, source)),
                Ok(meta) if meta.is_dir() => return Err(OpError::IsDirectory { path: display }),
                Ok(_) => {}
            }
            std::fs::remove_file(&entry).map_err(|source| io_error("delete", &display, source))?;
            Ok(AppliedChange {
                kind: ChangeKind::Deleted,
                path: display,
                moved_from: None,
                added_lines: 0,
                removed_lines: 0,
                fuzz: Fuzz::Exact,
            })
        }
        FileOp::Update { chunks, .. } => {
            let original = read_text(&target, &display, max_file_bytes)?;
            let updated =
                apply_chunks(&original, &chunks).map_err(|mismatch| OpError::Mismatch {
                    path: display.clone(),
                    mismatch,
                })?;
            let (added_lines, removed_lines) = line_counts(&chunks);
            let mut change = AppliedChange {
                kind: ChangeKind::Updated,
                path: display,
                moved_from: None,
                added_lines,
                removed_lines,
                fuzz: updated.fuzz,
            };
            match move_to {
                Some((dest, dest_display)) if dest != target => {
                    refuse_directory(&dest, &dest_display)?;
                    write_file(&dest, &dest_display, updated.text.as_bytes())?;
                    std::fs::remove_file(&entry).map_err(|source| {
                        io_error("remove the moved file", &change.path, source)
                    })?;
                    change.moved_from = Some(std::mem::replace(&mut change.path, dest_display));
                }
                _ => write_file(&target, &change.path, updated.text.as_bytes())?,
            }
            Ok(change)
        }
    }
}

fn line_counts(chunks: &[Chunk]) -> (usize, usize) {
    chunks.iter().fold((0, 0), |(added, removed), chunk| {
        (added + chunk.added, removed + chunk.removed)
    })
}

fn io_error(action: &'static str, path: &str, source: io::Error) -> OpError {
    OpError::Io {
        action,
        path: path.to_string(),
        source,
    }
}

fn refuse_directory(path: &Path, display: &str) -> Result<(), OpError> {
    if path.is_dir() {
        return Err(OpError::IsDirectory {
            path: display.to_string(),
        });
    }
    Ok(())
}

fn read_text(path: &Path, display: &str, max_file_bytes: u64) -> Result<String, OpError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(OpError::UpdateMissing {
                path: display.to_string(),
            });
        }
        Err(source) => return Err(io_error("inspect", display, source)),
    };
    if meta.is_dir() {
        return Err(OpError::IsDirectory {
            path: display.to_string(),
        });
    }
    if meta.len() > max_file_bytes {
        return Err(OpError::TooLarge {
            path: display.to_string(),
            bytes: meta.len(),
            limit: max_file_bytes,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| io_error("read", display, source))?;
    String::from_utf8(bytes).map_err(|_| OpError::NotText {
        path: display.to_string(),
    })
}

fn write_file(path: &Path, display: &str, contents: &[u8]) -> Result<(), OpError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|source| io_error("create the directories of", display, source))?;
    }
    std::fs::write(path, contents).map_err(|source| io_error("write", display, source))
}
