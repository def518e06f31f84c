//! Zip archives, git repositories and file trees for tests.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file with a bug the scripted model fixes (`-` for `+`, see
/// [`crate::fix_add_steps`]).
pub const CALC_PY: &str = "def add(a, b):\n    return a - b\n";

/// A zip archive of `files` (path, content).
pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, content) in files {
        zip.start_file(*path, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Runs the git CLI in `dir` with a neutral identity and no machine or user
/// configuration; panics with git's answer on failure; returns its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@example.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// A repository made with the git CLI: `calc.py` ([`CALC_PY`]) on `main`, one commit.
pub fn git_repo(dir: &Path) {
    std::fs::write(dir.join("calc.py"), CALC_PY).unwrap();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    git(dir, &["add", "calc.py"]);
    git(dir, &["commit", "--quiet", "-m", "add with a bug"]);
}

/// `git apply` of `patch` in `dir` (the patch file is written beside `dir`); panics with
/// git's message on failure.
pub fn git_apply(dir: &Path, patch: &str) {
    let patch_file = dir.join("..").join(format!(
        "{}.patch",
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&patch_file, patch).unwrap();
    let out = Command::new("git")
        .arg("apply")
        .arg("--whitespace=nowarn")
        .arg(&patch_file)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git apply failed: {}\n{patch}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Applies `diff` to a fresh copy of `files`; returns `calc.py` after.
pub fn apply_to_original(files: &[(&str, &str)], diff: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        std::fs::write(dir.path().join(path), content).unwrap();
    }
    std::fs::write(dir.path().join("fix.patch"), diff).unwrap();
    let applied = Command::new("git")
        .args(["apply", "fix.patch"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(applied.status.success(), "git apply: {applied:?}\n{diff}");
    std::fs::read_to_string(dir.path().join("calc.py")).unwrap()
}

/// Copies a tree (files and folders; fixtures hold no symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` (relative path -> bytes), `.git` folders excluded.
pub fn tree_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    collect(dir, dir, &mut files);
    files
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.insert(rel, std::fs::read(&path).unwrap());
        }
    }
}

/// Every file under `dir`, sorted; nothing when `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.sort();
    found
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}
