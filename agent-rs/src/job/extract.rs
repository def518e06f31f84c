//! Unpacking the workspace archive without trusting it.
//!
//! The archive comes from the orchestrator, but it is built from a user's upload or a
//! repository, so it is treated as hostile. Refused outright, with the entry named:
//! absolute paths, `..` components, hard links, device files and FIFOs, symlinks whose
//! target leaves the workspace, more entries or more unpacked bytes than the caps. The
//! unpacked size is checked from each header before the entry's data is read, and the
//! decompressed stream itself is capped, so a gzip bomb costs a bounded amount of CPU,
//! memory and disk.
//!
//! `tar`'s `unpack_in` does the writing: it also refuses to write through a symlink that
//! leads out (it checks each parent directory's real location). Symlinks are first
//! checked by their text; a last pass resolves every symlink in the unpacked tree, which
//! catches links that only escape through other links.

use std::cell::Cell;
use std::io::{BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use tar::EntryType;

/// Caps on what an archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Total bytes of file content.
    pub max_bytes: u64,
    /// Entries of any kind (files, directories, links).
    pub max_entries: u64,
}

impl ExtractLimits {
    /// Decompressed tar bytes allowed: the content plus headers and padding for every
    /// entry allowed, with room for long-name and PAX records.
    fn max_stream_bytes(&self) -> u64 {
        self.max_bytes
            .saturating_add(self.max_entries.saturating_mul(2 * 1024))
            .saturating_add(1 << 20)
    }
}

/// What was unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractSummary {
    pub entries: u64,
    pub bytes: u64,
}

/// The archive was refused or could not be read.
#[derive(Debug, thiserror::Error)]
#[error("bad workspace archive: {0}")]
pub struct ArchiveError(pub String);

/// Unpacks the `.tar.gz` in `archive` into `root`, an existing, empty directory.
pub fn extract_workspace(
    archive: impl Read,
    root: &Path,
    limits: ExtractLimits,
) -> Result<ExtractSummary, ArchiveError> {
    let root = root
        .canonicalize()
        .map_err(|err| ArchiveError(format!("cannot open `{}`: {err}", root.display())))?;
    let over_stream_cap = Rc::new(Cell::new(false));
    let stream = CappedReader {
        inner: GzDecoder::new(BufReader::new(archive)),
        remaining: limits.max_stream_bytes(),
        exceeded: Rc::clone(&over_stream_cap),
    };
    let mut tar = tar::Archive::new(stream);
    tar.set_preserve_permissions(false);
    tar.set_preserve_ownerships(false);
    tar.set_unpack_xattrs(false);
    tar.set_overwrite(true);
    let read_error = |err: std::io::Error| {
        if over_stream_cap.get() {
            ArchiveError(format!(
                "it decompresses to more than the cap allows (AGENT_MAX_WORKSPACE_BYTES is {} bytes)",
                limits.max_bytes
            ))
        } else {
            ArchiveError(format!("not a readable .tar.gz: {err}"))
        }
    };

    let mut summary = ExtractSummary {
        entries: 0,
        bytes: 0,
    };
    for entry in tar.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        summary.entries += 1;
        if summary.entries > limits.max_entries {
            return Err(ArchiveError(format!(
                "it has more than {} entries (AGENT_MAX_WORKSPACE_ENTRIES)",
                limits.max_entries
            )));
        }
        let path = entry.path().map_err(read_error)?.into_owned();
        let relative = checked_relative_path(&path)?;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                summary.bytes = summary.bytes.saturating_add(entry.size());
                if summary.bytes > limits.max_bytes {
                    return Err(ArchiveError(format!(
                        "it unpacks to more than {} bytes (AGENT_MAX_WORKSPACE_BYTES); `{}` goes past the cap",
                        limits.max_bytes,
                        path.display()
                    )));
                }
            }
            EntryType::Directory => {}
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(read_error)?
                    .ok_or_else(|| {
                        ArchiveError(format!("symlink `{}` has no target", path.display()))
                    })?
                    .into_owned();
                if !link_target_stays_inside(&relative, &target) {
                    return Err(ArchiveError(format!(
                        "symlink `{}` points to `{}`, outside the workspace",
                        path.display(),
                        target.display()
                    )));
                }
            }
            // Metadata for the archive as a whole (git archive writes one); no file.
            EntryType::XGlobalHeader => continue,
            EntryType::Link => {
                return Err(ArchiveError(format!(
                    "`{}` is a hard link; hard links are not accepted, archive the file itself",
                    path.display()
                )));
            }
            other => {
                return Err(ArchiveError(format!(
                    "`{}` is a special entry ({other:?}); only files, directories and symlinks are accepted",
                    path.display()
                )));
            }
        }
        if relative.as_os_str().is_empty() {
            continue; // `./` itself
        }
        let unpacked = entry.unpack_in(&root).map_err(|err| {
            if over_stream_cap.get() {
                read_error(err)
            } else {
                ArchiveError(format!("cannot unpack `{}`: {err}", path.display()))
            }
        })?;
        if !unpacked {
            return Err(ArchiveError(format!(
                "`{}` would be written outside the workspace",
                path.display()
            )));
        }
        if matches!(kind, EntryType::Directory) {
            ensure_owner_access(&root.join(&relative), 0o700)?;
        } else if !matches!(kind, EntryType::Symlink) {
            ensure_owner_access(&root.join(&relative), 0o600)?;
        }
    }
    refuse_escaping_symlinks(&root)?;
    Ok(summary)
}

/// The entry's path without `.` parts; refuses absolute paths and `..`.
fn checked_relative_path(path: &Path) -> Result<PathBuf, ArchiveError> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(ArchiveError(format!(
                    "`{}` has an absolute path; entries must be relative to the workspace root",
                    path.display()
                )));
            }
            Component::ParentDir => {
                return Err(ArchiveError(format!(
                    "`{}` contains `..`; entries must stay inside the workspace",
                    path.display()
                )));
            }
        }
    }
    Ok(relative)
}

/// Whether `target`, read from the directory holding the link at `link` (relative to
/// the root), stays inside the root by its text alone.
fn link_target_stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth = link.components().count().saturating_sub(1);
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The agent must be able to edit what it was given, whatever modes the archive set.
fn ensure_owner_access(path: &Path, bits: u32) -> Result<(), ArchiveError> {
    let fail = |err: std::io::Error| {
        ArchiveError(format!(
            "cannot set permissions on `{}`: {err}",
            path.display()
        ))
    };
    let mut permissions = std::fs::symlink_metadata(path).map_err(fail)?.permissions();
    if permissions.mode() & bits != bits {
        permissions.set_mode(permissions.mode() | bits);
        std::fs::set_permissions(path, permissions).map_err(fail)?;
    }
    Ok(())
}

/// Resolves every symlink under `root` (without following any while walking) and
/// refuses one that leads out. Dangling links lead nowhere and are kept.
fn refuse_escaping_symlinks(root: &Path) -> Result<(), ArchiveError> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|err| ArchiveError(format!("cannot list `{}`: {err}", dir.display())))?;
        for entry in entries {
            let entry = entry
                .map_err(|err| ArchiveError(format!("cannot list `{}`: {err}", dir.display())))?;
            let file_type = entry.file_type().map_err(|err| {
                ArchiveError(format!(
                    "cannot inspect `{}`: {err}",
                    entry.path().display()
                ))
            })?;
            let path = entry.path();
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_symlink()
                && let Ok(real) = path.canonicalize()
                && !real.starts_with(root)
            {
                let shown = path.strip_prefix(root).unwrap_or(&path);
                return Err(ArchiveError(format!(
                    "symlink `{}` leads outside the workspace (through other links)",
                    shown.display()
                )));
            }
        }
    }
    Ok(())
}

/// Fails the read once more than `remaining` bytes came through, and says so in
/// `exceeded` (the error itself reaches us wrapped by `tar`).
struct CappedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        match self.remaining.checked_sub(read as u64) {
            Some(left) => {
                self.remaining = left;
                Ok(read)
            }
            None => {
                self.exceeded.set(true);
                Err(std::io::Error::other(
                    "decompressed archive exceeds the size cap",
                ))
            }
        }
    }
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
