//! What libgit2 cannot read in a work tree, and how it is kept out of its way.
//!
//! libgit2 stops any walk of the working directory at a directory nested 100 deep
//! ("directory nesting too deep") or at a path over 4096 bytes, and a stopped walk means
//! no tree at all. When building a tree fails, the work tree is walked here (git's ignore
//! rules, nested repositories not entered, as libgit2 walks it) to find the directories
//! past those bounds; they become ignore rules of the repository handle (in memory,
//! never written to `.git`), the tree is built without them, and they are reported as
//! left out of the patch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::WalkBuilder;

/// Deepest directory (in components below the work tree) left to libgit2; its limit is
/// 100 walk frames, the root's included.
const MAX_DEPTH: usize = 96;
/// Longest directory path (absolute, in bytes) left to libgit2: its limit is 4096 for a
/// file's path, and a file name may take 255 more.
const MAX_DIR_PATH_BYTES: usize = 4096 - 256;

/// A directory libgit2 cannot read, relative to the work tree, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unreachable {
    pub path: PathBuf,
    pub reason: &'static str,
}

/// The top-most directories of `workdir` that libgit2 cannot walk into.
pub(super) fn find_unreachable(workdir: &Path) -> Vec<Unreachable> {
    let found = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&found);
    let root = workdir.to_path_buf();
    let walk = WalkBuilder::new(workdir)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |entry| {
            if entry.file_name() == ".git" {
                return false;
            }
            if !entry.file_type().is_some_and(|kind| kind.is_dir()) || entry.depth() == 0 {
                return true;
            }
            // A nested repository: libgit2 does not enter it either.
            if entry.path().join(".git").exists() {
                return false;
            }
            let reason = if entry.depth() >= MAX_DEPTH {
                "nested more than 95 directories deep, past what git's library can read"
            } else if entry.path().as_os_str().len() > MAX_DIR_PATH_BYTES {
                "its path is too long for git's library to read (over 4096 bytes with a file name)"
            } else {
                return true;
            };
            let relative = entry.path().strip_prefix(&root).unwrap_or(entry.path());
            if let Ok(mut found) = sink.lock() {
                found.push(Unreachable {
                    path: relative.to_path_buf(),
                    reason,
                });
            }
            false
        })
        .build();
    // Only the filter's findings matter; entries and their errors are not.
    walk.for_each(drop);
    let mut found = found.lock().map(|found| found.clone()).unwrap_or_default();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// The ignore rule (gitignore syntax, anchored to the work tree) that keeps libgit2 out
/// of `relative`. `None` when the path cannot be written as a rule (not UTF-8).
pub(super) fn ignore_rule(relative: &Path) -> Option<String> {
    let text = relative.to_str()?;
    let mut rule = String::with_capacity(text.len() + 8);
    rule.push('/');
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']' | '!' | '#' | ' ') {
            rule.push('\\');
        }
        rule.push(c);
    }
    rule.push('/');
    Some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_anchored_and_escaped() {
        assert_eq!(ignore_rule(Path::new("a/b")).as_deref(), Some("/a/b/"));
        assert_eq!(
            ignore_rule(Path::new("we[ir]d *dir/#x")).as_deref(),
            Some("/we\\[ir\\]d\\ \\*dir/\\#x/")
        );
    }

    #[test]
    fn directories_past_the_depth_are_found_top_most_only() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join(vec!["d"; 110].join("/"));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("f"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("shallow/x")).unwrap();
        let found = find_unreachable(dir.path());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path.components().count(), MAX_DEPTH);
    }
}
