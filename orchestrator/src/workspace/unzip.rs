//! Safe extraction of an uploaded zip into a fresh workspace folder.
//!
//! Two passes. The first reads only the central directory and refuses the archive for
//! anything it can tell from there (escaping or duplicate names, symlinks, devices,
//! encryption, entry count, declared size), so most bad uploads write nothing at all; the
//! API runs the same pass at upload ([`check_zip`]), so such an archive is refused with
//! this module's message before a task exists. The
//! second extracts into a staging folder and counts the bytes it actually writes: the
//! sizes in the headers are the attacker's word, the decompressed stream is not. (The
//! `zip` crate also stops an entry that outgrows its declared size; the count does not
//! rely on it.)

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive, ZipReadOptions};

use super::{WorkspaceError, display_name, publish, staging_beside};

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Caps and choices for [`extract_zip`].
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Bytes written across all entries.
    pub max_total_bytes: u64,
    /// Entries in the archive, folders included.
    pub max_entries: usize,
    /// Largest allowed (bytes written / compressed bytes) for one entry...
    pub max_ratio: u64,
    /// ...once the entry has written more than this (small, very regular files such as
    /// empty-ish JSON or zero-filled fixtures legitimately compress far better).
    pub ratio_grace_bytes: u64,
    /// Unwrap a lone top-level folder (`repo-main/...`, as GitHub's zips have).
    pub unwrap_single_root: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            max_total_bytes: 1 << 30,
            max_entries: 50_000,
            max_ratio: 200,
            ratio_grace_bytes: 1 << 20,
            unwrap_single_root: true,
        }
    }
}

/// What an extraction produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    pub files: u64,
    pub dirs: u64,
    /// Bytes written (decompressed).
    pub bytes: u64,
    /// The top-level folder that was unwrapped, if any.
    pub unwrapped_root: Option<String>,
}

/// One entry the first pass accepted.
struct Planned {
    index: usize,
    name: String,
    rel: PathBuf,
    is_dir: bool,
    executable: bool,
    compressed: u64,
}

/// Extracts `zip_path` into `dest` (absent or an empty folder). On any refusal `dest` is
/// left as it was and no staging files remain. Entries under `__MACOSX/` (Finder's
/// resource forks) are skipped.
pub fn extract_zip(
    zip_path: &Path,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats, WorkspaceError> {
    let file = File::open(zip_path).map_err(|e| WorkspaceError::io(zip_path, e))?;
    let archive_len = file
        .metadata()
        .map_err(|e| WorkspaceError::io(zip_path, e))?
        .len();
    let mut archive = ZipArchive::new(BufReader::new(file)).map_err(unreadable)?;
    let plan = plan_entries(&archive, archive_len, opts)?;

    let staging = staging_beside(dest)?;
    let mut stats = ExtractStats::default();
    for entry in &plan {
        let path = staging.path().join(&entry.rel);
        if entry.is_dir {
            std::fs::create_dir_all(&path).map_err(|e| WorkspaceError::io(&path, e))?;
            stats.dirs += 1;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| WorkspaceError::io(parent, e))?;
        }
        let written = extract_file(&mut archive, entry, &path, stats.bytes, opts)?;
        stats.files += 1;
        stats.bytes += written;
    }

    let mut finished = staging.path().to_path_buf();
    if opts.unwrap_single_root
        && let Some(root) = lone_folder(staging.path())?
    {
        finished = staging.path().join(&root);
        stats.unwrapped_root = Some(root);
    }
    publish(staging, &finished, dest)?;
    Ok(stats)
}

/// The first pass alone, on an archive not yet stored: what the API runs at upload so a
/// hostile archive is refused with the message the extraction would give. Returns the
/// number of entries that would be extracted.
pub fn check_zip<R: Read + std::io::Seek>(
    reader: R,
    archive_len: u64,
    opts: &ExtractOptions,
) -> Result<usize, WorkspaceError> {
    let archive = ZipArchive::new(reader).map_err(unreadable)?;
    plan_entries(&archive, archive_len, opts).map(|plan| plan.len())
}

/// The first pass: everything decidable from the central directory.
fn plan_entries<R: Read + std::io::Seek>(
    archive: &ZipArchive<R>,
    archive_len: u64,
    opts: &ExtractOptions,
) -> Result<Vec<Planned>, WorkspaceError> {
    if archive.has_duplicate_names() {
        return Err(WorkspaceError::ZipDuplicateNames);
    }
    if archive.len() > opts.max_entries {
        return Err(WorkspaceError::ZipTooManyEntries {
            limit: opts.max_entries,
        });
    }
    let mut files: HashSet<PathBuf> = HashSet::new();
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    let mut declared_total: u64 = 0;
    let mut plan = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(unreadable)?;
        let name = entry.name().map_err(unreadable)?.into_owned();
        let shown = display_name(&name);
        let segments = safe_segments(&name).ok_or_else(|| WorkspaceError::ZipEntryEscapes {
            entry: shown.clone(),
        })?;
        if segments.first() == Some(&"__MACOSX") {
            continue;
        }
        if entry.encrypted() {
            return Err(WorkspaceError::ZipEncrypted { entry: shown });
        }
        if !matches!(
            entry.compression(),
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(WorkspaceError::ZipUnsupported { entry: shown });
        }
        let mode = entry.unix_mode().unwrap_or(0);
        let is_dir = match mode & S_IFMT {
            0 | S_IFREG => entry.is_dir(),
            S_IFDIR => true,
            S_IFLNK => return Err(WorkspaceError::ZipSymlink { entry: shown }),
            _ => return Err(WorkspaceError::ZipSpecialFile { entry: shown }),
        };
        if segments.is_empty() {
            // `./` and the like name the root itself.
            if is_dir {
                continue;
            }
            return Err(WorkspaceError::ZipEntryEscapes { entry: shown });
        }
        let rel: PathBuf = segments.iter().collect();
        check_conflicts(&rel, is_dir, &mut files, &mut dirs, &shown)?;
        if !is_dir {
            declared_total = declared_total.saturating_add(entry.size());
            if declared_total > opts.max_total_bytes {
                return Err(WorkspaceError::ZipTooLarge {
                    limit: opts.max_total_bytes,
                });
            }
        }
        plan.push(Planned {
            index,
            name: shown,
            rel,
            is_dir,
            executable: mode & 0o111 != 0,
            // A lying header cannot claim more compressed bytes than the file holds.
            compressed: entry.compressed_size().min(archive_len),
        });
    }
    Ok(plan)
}

/// The name's path segments, or `None` if it could land outside the root: absolute
/// paths, `..`, drive letters, backslashes (Windows separators) and NUL bytes.
fn safe_segments(name: &str) -> Option<Vec<&str>> {
    if name.starts_with('/') || name.contains('\\') || name.contains('\0') {
        return None;
    }
    let segments: Vec<&str> = name
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segments.contains(&"..") {
        return None;
    }
    if let Some(first) = segments.first() {
        let mut chars = first.chars();
        if let (Some(letter), Some(':')) = (chars.next(), chars.next())
            && letter.is_ascii_alphabetic()
        {
            return None;
        }
    }
    Some(segments)
}

/// Refuses a path listed twice, or listed both as a file and as a folder (`a` then
/// `a/b`), which would otherwise overwrite or fail halfway through.
fn check_conflicts(
    rel: &Path,
    is_dir: bool,
    files: &mut HashSet<PathBuf>,
    dirs: &mut HashSet<PathBuf>,
    shown: &str,
) -> Result<(), WorkspaceError> {
    let duplicate = || WorkspaceError::ZipDuplicate {
        entry: shown.to_string(),
    };
    if files.contains(rel) || (!is_dir && dirs.contains(rel)) {
        return Err(duplicate());
    }
    for ancestor in rel.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        if files.contains(ancestor) {
            return Err(duplicate());
        }
        dirs.insert(ancestor.to_path_buf());
    }
    if is_dir {
        dirs.insert(rel.to_path_buf());
    } else {
        files.insert(rel.to_path_buf());
    }
    Ok(())
}

/// Decompresses one entry, enforcing the total and ratio caps on the bytes as they come.
fn extract_file<R: Read + std::io::Seek>(
    archive: &mut ZipArchive<R>,
    entry: &Planned,
    path: &Path,
    written_before: u64,
    opts: &ExtractOptions,
) -> Result<u64, WorkspaceError> {
    let read_opts = ZipReadOptions::new().enforce_header_consistency(true);
    let mut reader = archive
        .by_index_with_options(entry.index, read_opts)
        .map_err(|e| entry_error(e, &entry.name))?;
    let mode = if entry.executable { 0o755 } else { 0o644 };
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| WorkspaceError::io(path, e))?;
    let ratio_cap = entry.compressed.max(1).saturating_mul(opts.max_ratio);
    let mut written: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| WorkspaceError::ZipUnreadable {
                reason: format!("entry `{}`: {e}", entry.name),
            })?;
        if n == 0 {
            break;
        }
        written += n as u64;
        if written_before + written > opts.max_total_bytes {
            return Err(WorkspaceError::ZipTooLarge {
                limit: opts.max_total_bytes,
            });
        }
        if written > opts.ratio_grace_bytes && written > ratio_cap {
            return Err(WorkspaceError::ZipRatio {
                entry: entry.name.clone(),
                limit: opts.max_ratio,
            });
        }
        out.write_all(&buf[..n])
            .map_err(|e| WorkspaceError::io(path, e))?;
    }
    out.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| WorkspaceError::io(path, e))?;
    Ok(written)
}

/// The name of the only entry in `dir` if that entry is a folder.
fn lone_folder(dir: &Path) -> Result<Option<String>, WorkspaceError> {
    let mut entries = std::fs::read_dir(dir).map_err(|e| WorkspaceError::io(dir, e))?;
    let Some(first) = entries.next() else {
        return Ok(None);
    };
    if entries.next().is_some() {
        return Ok(None);
    }
    let first = first.map_err(|e| WorkspaceError::io(dir, e))?;
    let is_dir = first
        .file_type()
        .map_err(|e| WorkspaceError::io(&first.path(), e))?
        .is_dir();
    Ok(is_dir.then(|| first.file_name().to_string_lossy().into_owned()))
}

fn entry_error(e: ZipError, entry: &str) -> WorkspaceError {
    match e {
        ZipError::UnsupportedArchive(_) | ZipError::CompressionMethodNotSupported(_) => {
            WorkspaceError::ZipUnsupported {
                entry: entry.to_string(),
            }
        }
        ZipError::InvalidPassword => WorkspaceError::ZipEncrypted {
            entry: entry.to_string(),
        },
        other => WorkspaceError::ZipUnreadable {
            reason: format!("entry `{entry}`: {other}"),
        },
    }
}

fn unreadable(e: ZipError) -> WorkspaceError {
    WorkspaceError::ZipUnreadable {
        reason: e.to_string(),
    }
}
