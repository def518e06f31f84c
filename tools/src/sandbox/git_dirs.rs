//! The git directories of a workspace whose hooks and config a command must not change.
//!
//! The workspace's own `.git`, and the git directories of its submodules, which git
//! keeps inside it (`.git/modules/<name>`, nested as `.../modules/<inner>`): git enters
//! a submodule on the superproject's `git status`, so a `core.fsmonitor` set in
//! `.git/modules/dep/config` would run there just as one in `.git/config` would.

use std::path::{Path, PathBuf};

/// How deep names under `modules` are followed (a submodule's name may hold slashes).
const MAX_MODULE_DEPTH: usize = 16;

/// `workspace/.git` (when it is a folder) and every submodule git directory inside it.
pub(crate) fn guarded_git_dirs(workspace: &Path) -> Vec<PathBuf> {
    let git = workspace.join(".git");
    if !git.is_dir() {
        return Vec::new();
    }
    let mut found = vec![git.clone()];
    modules_of(&git, 0, &mut found);
    found
}

/// Adds the git directories under `git_dir/modules`.
fn modules_of(git_dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let mut pending = vec![(git_dir.join("modules"), depth)];
    while let Some((dir, depth)) = pending.pop() {
        if depth >= MAX_MODULE_DEPTH {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            // Links are not followed: a real submodule's git directory is a folder.
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            let path = entry.path();
            if path.join("HEAD").is_file() && path.join("config").is_file() {
                found.push(path.clone());
                pending.push((path.join("modules"), depth + 1));
            } else {
                // A part of a name with slashes (`libs/` of `libs/dep`).
                pending.push((path, depth + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_dir(path: &Path) {
        std::fs::create_dir_all(path.join("objects/ab")).unwrap();
        std::fs::write(path.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(path.join("config"), "[core]\n").unwrap();
    }

    #[test]
    fn submodule_git_dirs_are_found_nested_and_by_slashed_names() {
        let ws = tempfile::tempdir().unwrap();
        let git = ws.path().join(".git");
        git_dir(&git);
        git_dir(&git.join("modules/dep"));
        git_dir(&git.join("modules/libs/inner"));
        git_dir(&git.join("modules/dep/modules/deeper"));
        let mut found = guarded_git_dirs(ws.path());
        found.sort();
        let mut expected = vec![
            git.clone(),
            git.join("modules/dep"),
            git.join("modules/dep/modules/deeper"),
            git.join("modules/libs/inner"),
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn no_git_folder_guards_nothing() {
        let ws = tempfile::tempdir().unwrap();
        assert!(guarded_git_dirs(ws.path()).is_empty());
        std::fs::write(ws.path().join(".git"), "gitdir: /elsewhere\n").unwrap();
        assert!(guarded_git_dirs(ws.path()).is_empty());
    }
}
