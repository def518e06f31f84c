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
//! written, the directory is searched for the one entry that is shown that way.

use std::ffi::{OsStr, OsString};
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

/// What a name with U+FFFD matched in a directory.
pub enum LossyMatch {
    /// No entry is shown that way.
    None,
    /// Exactly one entry, by its real name.
    One(OsString),
    /// Several entries look alike once shown; the count.
    Several(usize),
}

/// Finds the entry of `dir` whose name, shown with U+FFFD for the bytes that are not
/// UTF-8, is `shown`. Only names that are not UTF-8 take part: a UTF-8 name is matched
/// by the file system as written.
pub fn find_lossy(dir: &Path, shown: &OsStr) -> std::io::Result<LossyMatch> {
    let Some(shown) = shown.to_str() else {
        return Ok(LossyMatch::None);
    };
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
        count => LossyMatch::Several(count),
    })
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
    fn any_component_counts() {
        assert!(has_git_dir_component(Path::new("a/b/.git/hooks")));
        assert!(has_git_dir_component(Path::new(".GIT")));
        assert!(!has_git_dir_component(Path::new("a/.github/x")));
    }
}
