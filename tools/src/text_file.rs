//! What the file tools (`read_file_content`, `edit_file_content`) agree on about text files.
//!
//! Both tools must refuse binary files the same way, number lines the same way (so a line
//! number read from one is the line number the other reports), and tell the model the same
//! thing about a missing path or a directory. The edit tool also needs to replace a file
//! without ever leaving it half-written, which lives here as [`write_atomically`].

use std::fs::{Metadata, Permissions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::ToolError;

/// How much of a file's start is inspected to decide whether it is text (as git does).
pub const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// Whether bytes from a file's start look like something other than UTF-8 text: a NUL
/// byte, or bytes that are not UTF-8.
///
/// `complete` says whether `head` is the whole file; when it is not, a character cut in
/// two at the end of `head` is not held against it.
pub fn looks_binary(head: &[u8], complete: bool) -> bool {
    if memchr::memchr(0, head).is_some() {
        return true;
    }
    match std::str::from_utf8(head) {
        Ok(_) => false,
        // `error_len() == None` means the input ended inside a character.
        Err(err) => complete || err.error_len().is_some(),
    }
}

/// The refusal given for a file that is not UTF-8 text.
pub fn binary_refusal(display: &str, size: u64) -> ToolError {
    ToolError::rejected(format!(
        "`{display}` looks like a binary file ({}), not UTF-8 text, so it cannot be shown \
         or edited as text. Inspect it with run_shell_command instead (e.g. `file`, `xxd | head`).",
        human_size(size)
    ))
}

/// A byte count the way a person reads it: `812 bytes`, `48.2 KiB`, `50.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// What a resolved path turned out to be, before a tool opens it.
#[derive(Debug)]
pub enum PathKind {
    Missing,
    Directory,
    /// A FIFO, socket or device: opening it could block or never end.
    Special,
    File(Metadata),
}

/// Looks at a resolved path without following it anywhere new (the jail already resolved
/// every symlink on the way).
pub fn inspect(path: &Path) -> Result<PathKind, ToolError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(PathKind::Directory),
        Ok(meta) if meta.is_file() => Ok(PathKind::File(meta)),
        Ok(_) => Ok(PathKind::Special),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(PathKind::Missing),
        Err(err) => Err(ToolError::io("cannot inspect", path, err)),
    }
}

/// The refusal for a directory given where a file was expected.
pub fn directory_refusal(display: &str) -> ToolError {
    ToolError::rejected(format!(
        "`{display}` is a directory, not a file. Use list_directory to see what it contains."
    ))
}

/// The refusal for a FIFO, socket or device.
pub fn special_file_refusal(display: &str) -> ToolError {
    ToolError::rejected(format!(
        "`{display}` is not a regular file (a FIFO, socket or device); only regular files can be read or edited."
    ))
}

/// The line-ending convention a file follows, judged by its first line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
}

impl LineEnding {
    pub fn detect(text: &[u8]) -> Self {
        match memchr::memchr(b'\n', text) {
            Some(pos) if pos > 0 && text[pos - 1] == b'\r' => LineEnding::CrLf,
            _ => LineEnding::Lf,
        }
    }
}

/// Number of `\n` bytes.
pub fn count_newlines(bytes: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', bytes).count()
}

/// Number of lines in the rest of a reader, a last line without `\n` included; streamed,
/// so a large file is never held in memory. The reader must stand at the start of a line.
pub fn count_remaining_lines(reader: &mut impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = 0u64;
    let mut last = b'\n';
    loop {
        let read = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        lines += count_newlines(&buf[..read]) as u64;
        last = buf[read - 1];
    }
    if last != b'\n' {
        lines += 1;
    }
    Ok(lines)
}

/// Reads one line from `reader`, keeping at most `keep` bytes of it in `kept` (cleared
/// first) without its `\n`. Returns the line's full length without the `\n`, or `None` at
/// the end of input. A line longer than `keep` is read through but not stored, so one huge
/// line cannot blow up memory.
pub fn read_line_capped(
    reader: &mut impl BufRead,
    kept: &mut Vec<u8>,
    keep: usize,
) -> io::Result<Option<usize>> {
    kept.clear();
    let mut length = 0usize;
    let mut read_any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if chunk.is_empty() {
            return Ok(read_any.then_some(length));
        }
        read_any = true;
        let (body, consumed, done) = match memchr::memchr(b'\n', chunk) {
            Some(pos) => (&chunk[..pos], pos + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&body[..body.len().min(room)]);
        length += body.len();
        reader.consume(consumed);
        if done {
            return Ok(Some(length));
        }
    }
}

/// Digits needed to print `number`.
pub fn number_width(number: u64) -> usize {
    number
        .checked_ilog10()
        .map_or(1, |digits| digits as usize + 1)
}

/// Appends one line the way `cat -n` shows it: the number right-aligned, a tab, the text.
pub fn push_numbered_line(out: &mut String, number: u64, width: usize, line: &str) {
    use std::fmt::Write as _;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let _ = writeln!(out, "{number:>width$}\t{line}");
}

/// Replaces `path` with `contents` so that a reader sees either the old file or the new
/// one, never a mix: the text goes to a temporary file in the same directory, which is
/// then renamed over the original. `permissions` (the original file's) are applied to the
/// new file; a new file gets the usual defaults (`0o666` less the umask), not the private
/// mode temporary files are born with.
///
/// The data is not synced to disk first: the goal is that no reader or crash of this
/// process sees a half-written file, not durability across a power cut, and a sync of a
/// large file would cost more than the edit itself.
pub fn write_atomically(
    path: &Path,
    contents: &[u8],
    permissions: Option<Permissions>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    temp.write_all(contents)?;
    temp.flush()?;
    if let Some(permissions) = permissions {
        temp.as_file().set_permissions(permissions)?;
    }
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

#[cfg(test)]
#[path = "text_file_tests.rs"]
mod tests;
