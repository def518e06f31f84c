//! Git-format patch sections for the plain-folder mode, written by hand because there is
//! no repository to ask: headers with git's path quoting, text hunks from `similar`, and
//! binary hunks encoded by libgit2 (which needs no repository for that).
//!
//! Everything here aims at one reader, `git apply` on an untouched copy of the starting
//! state, so the output follows git's own rules rather than generic unified diff:
//! lines end at `\n` only (a lone `\r` is content), a missing final newline gets the
//! `\ No newline at end of file` marker, and binary hunks carry the full blob ids that
//! `git apply` checks the preimage against.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use git2::{DiffOptions, Oid, Patch};
use similar::{Algorithm, DiffOp, DiffTag, capture_diff_slices_deadline, group_diff_ops};

use super::DiffError;

/// Git's file modes, as written in `new file mode` and friends.
pub(super) const MODE_REGULAR: u32 = 0o100644;
pub(super) const MODE_EXECUTABLE: u32 = 0o100755;
pub(super) const MODE_SYMLINK: u32 = 0o120000;

/// Lines of unchanged context around each change, as `git diff` uses by default.
const CONTEXT_LINES: usize = 3;

/// Longest a line diff of one file may search for the smallest change.
const DIFF_DEADLINE: Duration = Duration::from_secs(5);

/// Git looks for a NUL byte this far into a file to call it binary.
const BINARY_SNIFF_BYTES: usize = 8000;

/// The forward hunk that empties a file: git's encoding of `literal 0`.
const EMPTY_LITERAL: &str = "literal 0\nHcmV?d00001\n\n";

/// One side of a file change.
pub(super) struct Side<'a> {
    pub mode: u32,
    pub oid: Oid,
    /// `None` when the file was too large to keep; only its id is known.
    pub content: Option<&'a [u8]>,
}

/// What happened to one path.
pub(super) enum FileChange<'a> {
    Added(Side<'a>),
    Deleted(Side<'a>),
    Modified { old: Side<'a>, new: Side<'a> },
}

/// Line counts of one section, or why it was left out of the patch.
#[derive(Debug, Default)]
pub(super) struct SectionStats {
    pub insertions: usize,
    pub deletions: usize,
    /// Set when nothing was written: the new content is unknown, and a section without
    /// it would make `git apply` refuse the whole patch.
    pub left_out: Option<String>,
}

/// Appends the section for `path` (relative, `/`-separated bytes) to `out`, or nothing
/// (with the reason in [`SectionStats::left_out`]) when the new content is unknown.
pub(super) fn write_section(
    out: &mut String,
    path: &[u8],
    change: &FileChange<'_>,
) -> Result<SectionStats, DiffError> {
    let new_unknown = match change {
        FileChange::Added(new) | FileChange::Modified { new, .. } => new.content.is_none(),
        FileChange::Deleted(_) => false,
    };
    if new_unknown {
        return Ok(SectionStats {
            left_out: Some(
                "its new content is too large to diff (or could not be read); copy the file \
                 itself"
                    .into(),
            ),
            ..SectionStats::default()
        });
    }
    let a_name = quote_path("a/", path);
    let b_name = quote_path("b/", path);
    let _ = writeln!(out, "diff --git {a_name} {b_name}");
    let zero = Oid::ZERO_SHA1;
    let (old, new) = match change {
        FileChange::Added(new) => {
            let _ = writeln!(out, "new file mode {:06o}", new.mode);
            let _ = writeln!(out, "index {zero}..{}", new.oid);
            (None, Some(new))
        }
        FileChange::Deleted(old) => {
            let _ = writeln!(out, "deleted file mode {:06o}", old.mode);
            let _ = writeln!(out, "index {}..{zero}", old.oid);
            (Some(old), None)
        }
        FileChange::Modified { old, new } => {
            if old.mode != new.mode {
                let _ = writeln!(out, "old mode {:06o}", old.mode);
                let _ = writeln!(out, "new mode {:06o}", new.mode);
            }
            if old.oid == new.oid {
                return Ok(SectionStats::default());
            }
            if old.mode == new.mode {
                let _ = writeln!(out, "index {}..{} {:06o}", old.oid, new.oid, new.mode);
            } else {
                let _ = writeln!(out, "index {}..{}", old.oid, new.oid);
            }
            (Some(old), Some(new))
        }
    };
    let old_bytes = side_bytes(old);
    let new_bytes = side_bytes(new);
    let (Some(old_bytes), Some(new_bytes)) = (old_bytes, new_bytes) else {
        return write_binary(out, path, old, new);
    };
    match (text_of(old_bytes), text_of(new_bytes)) {
        (Some(old_text), Some(new_text)) => {
            if old_text.is_empty() && new_text.is_empty() {
                return Ok(SectionStats::default());
            }
            let space = if path.contains(&b' ') { "\t" } else { "" };
            let from = if old.is_some() {
                a_name.as_str()
            } else {
                "/dev/null"
            };
            let to = if new.is_some() {
                b_name.as_str()
            } else {
                "/dev/null"
            };
            let _ = writeln!(out, "--- {from}{space}");
            let _ = writeln!(out, "+++ {to}{space}");
            Ok(write_text_hunks(out, old_text, new_text))
        }
        _ => write_binary(out, path, old, new),
    }
}

/// The bytes of a side; an absent side (before an add, after a delete) is empty.
fn side_bytes<'a>(side: Option<&Side<'a>>) -> Option<&'a [u8]> {
    match side {
        None => Some(&[]),
        Some(side) => side.content,
    }
}

/// The text of a file git would diff line by line; `None` for binary content. Text that
/// is not UTF-8 counts as binary here because the patch is returned as a `String`.
fn text_of(bytes: &[u8]) -> Option<&str> {
    let sniff = &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)];
    if sniff.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Unified hunks between two texts, split on `\n` only (as git does).
pub(super) fn write_text_hunks(out: &mut String, old: &str, new: &str) -> SectionStats {
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    // Past the deadline `similar` settles for a coarser (still exact) diff.
    let deadline = Instant::now() + DIFF_DEADLINE;
    let ops =
        capture_diff_slices_deadline(Algorithm::Myers, &old_lines, &new_lines, Some(deadline));
    let mut stats = SectionStats::default();
    for group in group_diff_ops(ops, CONTEXT_LINES) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            hunk_range(old_range.start, old_range.len()),
            hunk_range(new_range.start, new_range.len())
        );
        for op in &group {
            write_op(out, op, &old_lines, &new_lines, &mut stats);
        }
    }
    stats
}

fn write_op(
    out: &mut String,
    op: &DiffOp,
    old_lines: &[&str],
    new_lines: &[&str],
    stats: &mut SectionStats,
) {
    let (tag, old_range, new_range) = op.as_tag_tuple();
    let removed = matches!(tag, DiffTag::Delete | DiffTag::Replace);
    let added = matches!(tag, DiffTag::Insert | DiffTag::Replace);
    if tag == DiffTag::Equal {
        for line in &old_lines[old_range.clone()] {
            write_line(out, ' ', line);
        }
    }
    if removed {
        for line in &old_lines[old_range.clone()] {
            write_line(out, '-', line);
        }
        stats.deletions += old_range.len();
    }
    if added {
        for line in &new_lines[new_range.clone()] {
            write_line(out, '+', line);
        }
        stats.insertions += new_range.len();
    }
}

fn write_line(out: &mut String, prefix: char, line: &str) {
    out.push(prefix);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

/// A hunk header range: `start,len` with git's conventions for one line and none.
fn hunk_range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    }
}

/// A `GIT binary patch` section. The new content is known ([`write_section`] checked).
fn write_binary(
    out: &mut String,
    path: &[u8],
    old: Option<&Side<'_>>,
    new: Option<&Side<'_>>,
) -> Result<SectionStats, DiffError> {
    let display = String::from_utf8_lossy(path).into_owned();
    let forward_only = old.is_some_and(|side| side.content.is_none());
    let new_content = new.and_then(|side| side.content);
    out.push_str("GIT binary patch\n");
    let old_content = old.and_then(|side| side.content).unwrap_or_default();
    match new_content {
        None if forward_only => out.push_str(EMPTY_LITERAL),
        None => out.push_str(&binary_hunks(&display, old_content, &[], false)?),
        Some(new) => out.push_str(&binary_hunks(&display, old_content, new, forward_only)?),
    }
    Ok(SectionStats::default())
}

/// The encoded hunks libgit2 writes after `GIT binary patch`. With `forward_only` the
/// old content is unknown, so only the forward hunk (always a literal against an empty
/// base) is kept: `git apply` needs no reverse hunk.
fn binary_hunks(
    display: &str,
    old: &[u8],
    new: &[u8],
    forward_only: bool,
) -> Result<String, DiffError> {
    let encode_error = |message: &str| DiffError::BinaryEncoding {
        path: display.to_owned(),
        message: message.to_owned(),
    };
    let mut options = DiffOptions::new();
    options.show_binary(true).force_binary(true);
    let name = Path::new("file");
    let mut patch = Patch::from_buffers(old, Some(name), new, Some(name), Some(&mut options))
        .map_err(|source| encode_error(source.message()))?;
    let buffer = patch
        .to_buf()
        .map_err(|source| encode_error(source.message()))?;
    let text = std::str::from_utf8(&buffer).map_err(|_| encode_error("non-ASCII output"))?;
    const MARKER: &str = "GIT binary patch\n";
    let start = text
        .find(MARKER)
        .ok_or_else(|| encode_error("no binary hunk produced"))?;
    let hunks = &text[start + MARKER.len()..];
    if !forward_only {
        return Ok(hunks.to_owned());
    }
    if !hunks.starts_with("literal ") {
        return Err(encode_error("forward hunk is not a literal"));
    }
    let end = hunks
        .find("\n\n")
        .ok_or_else(|| encode_error("unterminated hunk"))?;
    Ok(format!("{}\n\n", &hunks[..end]))
}

/// `prefix` + `path` as git writes it in headers: C-quoted when it holds control
/// characters, `"`, `\` or non-ASCII bytes (git's default `core.quotePath`), bare
/// otherwise. Spaces need no quoting.
pub(super) fn quote_path(prefix: &str, path: &[u8]) -> String {
    let needs_quoting = path
        .iter()
        .any(|&byte| !(0x20..0x7f).contains(&byte) || byte == b'"' || byte == b'\\');
    if !needs_quoting {
        return format!("{prefix}{}", String::from_utf8_lossy(path));
    }
    let mut quoted = format!("\"{prefix}");
    for &byte in path {
        match byte {
            0x07 => quoted.push_str("\\a"),
            0x08 => quoted.push_str("\\b"),
            b'\t' => quoted.push_str("\\t"),
            b'\n' => quoted.push_str("\\n"),
            0x0b => quoted.push_str("\\v"),
            0x0c => quoted.push_str("\\f"),
            b'\r' => quoted.push_str("\\r"),
            b'"' => quoted.push_str("\\\""),
            b'\\' => quoted.push_str("\\\\"),
            0x20..=0x7e => quoted.push(char::from(byte)),
            _ => {
                let _ = write!(quoted, "\\{byte:03o}");
            }
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
#[path = "patch_writer_tests.rs"]
mod tests;
