//! Packs a prepared workspace into the `.tar.gz` the agent downloads.
//!
//! Symlinks are stored as symlinks, never followed, so a link in a repository cannot pull
//! a file from the worker's disk into the tarball. Headers are deterministic (no owner, a
//! fixed mtime, mode 0644 or 0755 by the executable bit): the same tree gives the same
//! archive, and nothing about the worker's users leaks into it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{Builder, HeaderMode};
use walkdir::WalkDir;

use super::WorkspaceError;

/// What went into a tarball.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Bytes of file content before compression.
    pub content_bytes: u64,
}

/// Writes `dir`'s contents (entries relative to `dir`, `.git` included) to `out_path`,
/// atomically: a reader of `out_path` sees a whole tarball or none. FIFOs, sockets and
/// devices are skipped.
pub fn pack_tarball(dir: &Path, out_path: &Path) -> Result<PackStats, WorkspaceError> {
    let parent = match out_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".tarball-")
        .tempfile_in(parent)
        .map_err(|e| WorkspaceError::io(parent, e))?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| WorkspaceError::io(temp.path(), e))?;
    let gz = GzEncoder::new(BufWriter::new(file), Compression::default());
    let mut builder = Builder::new(gz);
    builder.mode(HeaderMode::Deterministic);
    builder.follow_symlinks(false);

    let stats = append_tree(&mut builder, dir)?;

    let write_err = |e| WorkspaceError::io(out_path, e);
    let gz = builder.into_inner().map_err(write_err)?;
    let mut buffered = gz.finish().map_err(write_err)?;
    buffered.flush().map_err(write_err)?;
    let file: File = buffered
        .into_inner()
        .map_err(|e| WorkspaceError::io(out_path, e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    temp.persist(out_path)
        .map_err(|e| WorkspaceError::io(out_path, e.error))?;
    Ok(stats)
}

fn append_tree<W: Write>(
    builder: &mut Builder<W>,
    dir: &Path,
) -> Result<PackStats, WorkspaceError> {
    let mut stats = PackStats::default();
    let walk = WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            WorkspaceError::io(&path, e.into())
        })?;
        let path = entry.path();
        let rel = path
            .strip_prefix(dir)
            .map_err(|e| WorkspaceError::io(path, std::io::Error::other(e)))?;
        let kind = entry.file_type();
        if kind.is_dir() {
            stats.dirs += 1;
        } else if kind.is_symlink() {
            stats.symlinks += 1;
        } else if kind.is_file() {
            stats.files += 1;
            let len = entry
                .metadata()
                .map_err(|e| WorkspaceError::io(path, e.into()))?
                .len();
            stats.content_bytes += len;
        } else {
            tracing::debug!(path = %path.display(), "skipping special file in workspace tarball");
            continue;
        }
        builder
            .append_path_with_name(path, rel)
            .map_err(|e| WorkspaceError::io(path, e))?;
    }
    Ok(stats)
}
