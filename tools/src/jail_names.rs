//! How the workspace jail reads a path's names: which ones are git's own directory, and
//! how a name the model saw with U+FFFD finds the file whose name is not UTF-8.
//!
//! `.git` is reserved the way git itself reserves it when it checks a path
//! (`verify_path`, with `core.protectNTFS` and `core.protectHFS`, which git enables on
//! every platform): ASCII case does not matter, trailing dots and spaces do not count,
//! `git~1` is the NTFS short name, and the code points HFS+ ignores are dropped first.
//! On Linux `.GIT` is a folder of its own, but refusing it costs nothing and keeps a
//! workspace safe when it is later checked out on macOS or Windows.
//!
//! Names that are not valid UTF-8 are shown to the model with U+FFFD (the tools speak
//! JSON, which is UTF-8). When the model sends such a name back and no entry has it as
//! written, the directory is searched for the one entry that is shown that way. Names
//! that look alike that way are told apart by their bytes: a byte from 0x80 up written
//! `\xHH` ([`escaped_name`]) is accepted back for the byte itself, so every name can be
//! named.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Whether a file name is git's directory (or a `.git` file pointing to one) under one
/// of the spellings git treats as the same name.
pub fn is_git_dir_name(name: &OsStr) -> bool {
    let shown = name.to_string_lossy();
    let kept: String = shown.chars().filter(|&c| !is_hfs_ignorable(c)).collect();
    let trimmed = kept.trim_end_matches(['.', ' ']);
    trimmed.eq_ignore_ascii_case(".git") || trimmed.eq_ignore_ascii_case("git~1")
}

/// Whether any component of a relative path is a `.git` name.
pub fn has_git_dir_component(relative: &Path) -> bool {
    relative
        .components()
        .any(|component| is_git_dir_name(component.as_os_str()))
}

/// Code points HFS+ leaves out when it compares names (git's `next_hfs_char`).
fn is_hfs_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}'
    )
}

/// What a name with U+FFFD or `\xHH` escapes matched in a directory.
pub enum LossyMatch {
    /// No entry is shown that way.
    None,
    /// Exactly one entry, by its real name.
    One(OsString),
    /// Several entries look alike once shown; their real names.
    Several(Vec<OsString>),
}

/// Finds the entry of `dir` that `shown` names: the one whose name is `shown` with its
/// `\xHH` escapes (bytes 0x80 and up) turned back into bytes, or else the one whose
/// name, shown with U+FFFD for the bytes that are not UTF-8, is `shown`. Only names that
/// are not UTF-8 take part in the second search: a UTF-8 name is matched by the file
/// system as written.
pub fn find_lossy(dir: &Path, shown: &OsStr) -> std::io::Result<LossyMatch> {
    let Some(shown) = shown.to_str() else {
        return Ok(LossyMatch::None);
    };
    if let Some(raw) = unescape_name(shown)
        && std::fs::symlink_metadata(dir.join(&raw)).is_ok()
    {
        return Ok(LossyMatch::One(raw));
    }
    if !shown.contains(char::REPLACEMENT_CHARACTER) {
        return Ok(LossyMatch::None);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if name.to_str().is_none() && name.to_string_lossy() == shown {
            found.push(name);
        }
    }
    Ok(match found.len() {
        0 => LossyMatch::None,
        1 => LossyMatch::One(found.swap_remove(0)),
        _ => {
            found.sort();
            LossyMatch::Several(found)
        }
    })
}

/// `name` with each byte that is not part of UTF-8 text written `\xHH`: a spelling that
/// [`find_lossy`] takes back to exactly this name.
pub fn escaped_name(name: &OsStr) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// The bytes `shown` spells with `\xHH` escapes of bytes 0x80 and up; `None` when it has
/// none. Lower bytes stay as written, so an escape never makes a `/`, a NUL or a `.`.
fn unescape_name(shown: &str) -> Option<OsString> {
    let bytes = shown.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut escaped = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes
            .get(at..at + 4)
            .filter(|quad| quad.starts_with(b"\\x"))
            .and_then(|quad| std::str::from_utf8(&quad[2..]).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|&byte| byte >= 0x80);
        match byte {
            Some(byte) => {
                out.push(byte);
                escaped = true;
                at += 4;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    escaped.then(|| OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_spellings_are_recognised() {
        for name in [
            ".git",
            ".GIT",
            ".Git",
            ".git.",
            ".git ",
            ".git. .",
            "git~1",
            "GIT~1",
            ".g\u{200c}it",
            "\u{feff}.git",
        ] {
            assert!(is_git_dir_name(OsStr::new(name)), "{name:?}");
        }
        for name in [
            ".gitignore",
            ".github",
            "git",
            ".git-x",
            "x.git",
            "git~2",
            ".gi",
        ] {
            assert!(!is_git_dir_name(OsStr::new(name)), "{name:?}");
        }
    }

    #[test]
    fn escapes_spell_the_bytes_that_are_not_utf8_and_read_back() {
        let name = OsStr::from_bytes(b"r\xe9sum\xc3\xa9-\\x41\xff");
        let escaped = escaped_name(name);
        assert_eq!(escaped, "r\\xe9sum\u{e9}-\\x41\\xff");
        assert_eq!(unescape_name(&escaped).as_deref(), Some(name));
        assert_eq!(unescape_name("plain"), None);
        // Low bytes are never made from an escape: no `/`, `.` or NUL.
        assert_eq!(unescape_name("a\\x2f..\\x00"), None);
        assert_eq!(
            unescape_name("\\x2e\\xe9").as_deref(),
            Some(OsStr::from_bytes(b"\\x2e\xe9"))
        );
    }

    #[test]
    fn any_component_counts() {
        assert!(has_git_dir_component(Path::new("a/b/.git/hooks")));
        assert!(has_git_dir_component(Path::new(".GIT")));
        assert!(!has_git_dir_component(Path::new("a/.github/x")));
    }
}
