//! What libgit2 cannot read in a work tree, and how it is kept out of its way.
//!
//! libgit2 stops any walk of the working directory at a directory nested 100 deep
//! ("directory nesting too deep"), and a stopped walk means no tree at all; a path over
//! 4096 bytes it passes over without a word (the entry counts as unreadable), so a
//! change below it would be missing from the patch with nothing said. Before each tree
//! is built, the work tree is walked here (git's ignore rules, nested repositories not
//! entered, as libgit2 walks it) to find the directories past those bounds; they become
//! ignore rules of the repository handle (in memory, never written to `.git`), the tree
//! is built without them, and they are reported as left out of the patch.

use std::path::{Path, PathBuf};

use git2::Repository;

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

/// The top-most directories of `repo`'s work tree (`workdir`, canonical) that libgit2
/// cannot walk into.
///
/// Only directories are looked at, and the repository itself says which are ignored
/// (its rules, the ones added in memory included): files are never matched against
/// ignore rules, which keeps this walk a fraction of the cost of libgit2's own.
pub(super) fn find_unreachable(repo: &Repository, workdir: &Path) -> Vec<Unreachable> {
    let mut found = Vec::new();
    visit(repo, workdir, Path::new(""), 0, &mut found);
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Looks below `relative` (a directory `depth` components below `workdir`).
fn visit(
    repo: &Repository,
    workdir: &Path,
    relative: &Path,
    depth: usize,
    found: &mut Vec<Unreachable>,
) {
    let Ok(entries) = std::fs::read_dir(workdir.join(relative)) else {
        // Gone meanwhile, or not readable: libgit2 cannot read it either, and says so
        // only by leaving it out; the caller's own walk errors report such folders.
        return;
    };
    for entry in entries.flatten() {
        // Symlinks are not followed (`file_type` does not follow them), as in git.
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) || entry.file_name() == ".git" {
            continue;
        }
        let child = relative.join(entry.file_name());
        let absolute = entry.path();
        // A nested repository: libgit2 does not enter it either.
        if absolute.join(".git").exists() {
            continue;
        }
        let reason = if depth + 1 >= MAX_DEPTH {
            "nested more than 95 directories deep, past what git's library can read"
        } else if absolute.as_os_str().len() > MAX_DIR_PATH_BYTES {
            "its path is too long for git's library to read (over 4096 bytes with a file name)"
        } else {
            // An ignored directory is not walked by libgit2, whatever is below it.
            if repo.is_path_ignored(&child).unwrap_or(false) {
                continue;
            }
            visit(repo, workdir, &child, depth + 1, found);
            continue;
        };
        if !repo.is_path_ignored(&child).unwrap_or(false) {
            found.push(Unreachable {
                path: child,
                reason,
            });
        }
    }
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
        // Under an ignored folder nothing is walked, so nothing is out of reach.
        std::fs::write(dir.path().join(".gitignore"), "build/\n").unwrap();
        let ignored = dir.path().join("build").join(vec!["b"; 110].join("/"));
        std::fs::create_dir_all(&ignored).unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let found = find_unreachable(&repo, dir.path());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path.components().count(), MAX_DEPTH);
    }

    #[test]
    fn directories_past_the_path_length_are_found_top_most_only() {
        let dir = tempfile::tempdir().unwrap();
        // Built one relative step at a time: the whole path is longer than PATH_MAX.
        let name = "n".repeat(200);
        let script =
            format!("for i in $(seq 25); do mkdir {name} && cd {name}; done; echo x > leaf");
        let status = std::process::Command::new("bash")
            .args(["-c", &script])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let repo = Repository::init(dir.path()).unwrap();
        let found = find_unreachable(&repo, dir.path());
        assert_eq!(found.len(), 1, "{found:?}");
        let shown = dir.path().join(&found[0].path);
        assert!(shown.as_os_str().len() > MAX_DIR_PATH_BYTES);
        assert!(shown.as_os_str().len() <= MAX_DIR_PATH_BYTES + 201);
        assert!(found[0].reason.contains("too long"));
    }
}
