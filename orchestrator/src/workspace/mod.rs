//! Workspace preparation: turning a task's input (a git URL + ref, or an uploaded zip)
//! into the folder the agent works in, and that folder into the tarball it downloads.
//!
//! Inputs are untrusted. A clone is shallow, capped in size and time, and reaches only
//! the addresses its URL policy checked; a zip is refused whole
//! (nothing left behind) if any entry escapes the root, is a symlink or a device, is
//! encrypted or repeated, or if the archive expands past its caps. Every step builds in a
//! temporary folder beside the destination and renames it into place, so the destination
//! holds a complete workspace or nothing.
//!
//! The functions block (libgit2, file I/O): async callers run them in
//! `tokio::task::spawn_blocking`.

mod git;
mod git_push;
mod git_relay;
pub mod git_url;
mod tarball;
mod unzip;

use std::path::{Path, PathBuf};

pub use git::{CloneOptions, clone_git, redact_url};
pub use git_push::{PushError, push_branch};
pub use git_url::{GitTransport, GitUrl, GitUrlPolicy, InvalidGitHost};
pub use tarball::{PackStats, pack_tarball};
pub use unzip::{ExtractOptions, ExtractStats, check_zip, extract_zip};

/// Why a workspace could not be prepared. Every variant but `Io` is the input's fault and
/// its message is written for the user who submitted it.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("git URL `{url}` is not accepted: {reason}")]
    UrlRefused { url: String, reason: String },
    #[error("`{git_ref}` is not a valid branch, tag or commit name")]
    InvalidRef { git_ref: String },
    #[error("`{git_ref}` is not a branch, tag or commit of {url}; check the spelling")]
    RefNotFound { url: String, git_ref: String },
    #[error("{url} has no default branch (is the repository empty?); give a branch or tag")]
    NoDefaultBranch { url: String },
    #[error("cloning {url} failed: {message}")]
    Clone { url: String, message: String },
    #[error("the repository's files add up to more than the {limit}-byte limit")]
    RepoTooLarge { limit: u64 },
    #[error("the repository has more than {limit} files, the limit")]
    RepoTooManyFiles { limit: u64 },

    #[error("the upload is not a readable zip archive: {reason}")]
    ZipUnreadable { reason: String },
    #[error(
        "zip entry `{entry}` points outside the archive (absolute path, `..`, drive letter or backslash); re-create the zip with relative paths"
    )]
    ZipEntryEscapes { entry: String },
    #[error("zip entry `{entry}` is a symbolic link; symlinks are not accepted in uploads")]
    ZipSymlink { entry: String },
    #[error("zip entry `{entry}` is a device, FIFO or socket; only files and folders are accepted")]
    ZipSpecialFile { entry: String },
    #[error("zip entry `{entry}` is encrypted; upload an archive without a password")]
    ZipEncrypted { entry: String },
    #[error("zip entry `{entry}` uses an unsupported compression method; use deflate or store")]
    ZipUnsupported { entry: String },
    #[error("the zip lists `{entry}` more than once")]
    ZipDuplicate { entry: String },
    #[error("the zip's directory lists the same path more than once")]
    ZipDuplicateNames,
    #[error("the zip has more than {limit} entries, the limit")]
    ZipTooManyEntries { limit: usize },
    #[error("the zip expands to more than {limit} bytes, the limit")]
    ZipTooLarge { limit: u64 },
    #[error(
        "zip entry `{entry}` expands more than {limit} times its compressed size; this looks like a zip bomb"
    )]
    ZipRatio { entry: String, limit: u64 },

    #[error("destination `{}` already exists and is not empty", path.display())]
    DestinationNotEmpty { path: PathBuf },
    #[error("workspace I/O on `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl WorkspaceError {
    /// True when the input is at fault (the API answers 4xx, the worker fails the task
    /// with the message); false for the server's own I/O trouble.
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            WorkspaceError::Io { .. } | WorkspaceError::DestinationNotEmpty { .. }
        )
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        WorkspaceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A temporary folder beside `dest`, so the final rename stays on one file system. `dest`
/// must be absent or an empty folder (which the rename then replaces).
pub(crate) fn staging_beside(dest: &Path) -> Result<tempfile::TempDir, WorkspaceError> {
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(WorkspaceError::DestinationNotEmpty {
                    path: dest.to_path_buf(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(WorkspaceError::DestinationNotEmpty {
                path: dest.to_path_buf(),
            });
        }
        Err(e) => return Err(WorkspaceError::io(dest, e)),
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(|e| WorkspaceError::io(parent, e))?;
    tempfile::Builder::new()
        .prefix(".workspace-")
        .tempdir_in(parent)
        .map_err(|e| WorkspaceError::io(parent, e))
}

/// Moves a finished staging folder (or a folder inside it) to `dest`; the staging folder
/// is deleted either way.
pub(crate) fn publish(
    staging: tempfile::TempDir,
    finished: &Path,
    dest: &Path,
) -> Result<(), WorkspaceError> {
    std::fs::rename(finished, dest).map_err(|e| WorkspaceError::io(dest, e))?;
    drop(staging);
    Ok(())
}

/// Shows untrusted names (zip entries, refs) safely in one line of a message.
pub(crate) fn display_name(raw: &str) -> String {
    const MAX: usize = 200;
    let escaped: String = raw.escape_debug().collect();
    if escaped.chars().count() > MAX {
        let cut: String = escaped.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}
