//! Round-trip harness: a workspace, an untouched copy of its starting state, the agent's
//! edits, then `git apply` of the diff onto the copy and a byte-for-byte comparison.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_rs::workspace_diff::{SnapshotKind, SnapshotLimits, WorkspaceDiff, WorkspaceSnapshot};
use tempfile::TempDir;

/// Runs the real git CLI, isolated from the machine's configuration; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir, args).output().expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(["-c", "core.autocrlf=false", "-c", "init.defaultBranch=main"])
        .args(args);
    command
}

/// A fresh repository with everything currently in `dir` committed.
pub fn init_repo_with_commit(dir: &Path) {
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", "start"]);
}

pub fn write(root: &Path, relative: &str, content: impl AsRef<[u8]>) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

pub fn set_executable(root: &Path, relative: &str, executable: bool) {
    let path = root.join(relative);
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies `from` into `to` (files, symlinks as symlinks, permissions), skipping `.git`.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".git" {
            continue;
        }
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let file_type = entry.file_type().unwrap();
        if file_type.is_symlink() {
            symlink(fs::read_link(&source).unwrap(), &target).unwrap();
        } else if file_type.is_dir() {
            copy_tree(&source, &target);
        } else {
            fs::copy(&source, &target).unwrap();
        }
    }
}

/// What a file is, byte for byte: content (or symlink target) and executable bit.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    File { bytes: Vec<u8>, executable: bool },
    Symlink(PathBuf),
}

/// Every file under `root` except `.git` and the `skip`ped paths, by relative path.
pub fn files(root: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Entry> {
    let mut found = BTreeMap::new();
    collect(root, root, &mut found);
    found.retain(|path, _| !skip.iter().any(|skipped| path.starts_with(skipped)));
    found
}

fn collect(root: &Path, dir: &Path, found: &mut BTreeMap<PathBuf, Entry>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap().to_path_buf();
        let file_type = entry.file_type().unwrap();
        if file_type.is_symlink() {
            found.insert(relative, Entry::Symlink(fs::read_link(&path).unwrap()));
        } else if file_type.is_dir() {
            collect(root, &path, found);
        } else {
            let executable = entry.metadata().unwrap().permissions().mode() & 0o111 != 0;
            found.insert(
                relative,
                Entry::File {
                    bytes: fs::read(&path).unwrap(),
                    executable,
                },
            );
        }
    }
}

/// A workspace whose starting state has been captured and copied aside.
pub struct Scenario {
    _dirs: TempDir,
    pub workspace: PathBuf,
    pub root: PathBuf,
    pub untouched: PathBuf,
    pub snapshot: WorkspaceSnapshot,
}

impl Scenario {
    /// `setup` builds the starting state in the workspace (make it a repository there if
    /// wanted); the snapshot covers `workspace/root_below` ("" for the workspace itself).
    pub fn start(setup: impl FnOnce(&Path), root_below: &str) -> Self {
        Self::start_with_limits(setup, root_below, SnapshotLimits::default())
    }

    pub fn start_with_limits(
        setup: impl FnOnce(&Path),
        root_below: &str,
        limits: SnapshotLimits,
    ) -> Self {
        let dirs = TempDir::new().unwrap();
        let workspace = dirs.path().join("workspace");
        fs::create_dir_all(&workspace).unwrap();
        setup(&workspace);
        let root = workspace.join(root_below);
        let untouched = dirs.path().join("untouched");
        copy_tree(&root, &untouched);
        let snapshot = WorkspaceSnapshot::capture_with_limits(&root, limits).unwrap();
        Self {
            _dirs: dirs,
            workspace,
            root,
            untouched,
            snapshot,
        }
    }

    pub fn kind(&self) -> SnapshotKind {
        self.snapshot.kind()
    }

    /// Diffs, applies the patch to the untouched copy with `git apply` (checked first)
    /// and asserts the copy now equals the root, except the `skip`ped (ignored) paths.
    pub fn diff_and_apply(&self, skip: &[&str]) -> WorkspaceDiff {
        let diff = self.snapshot.diff().unwrap();
        self.apply(&diff);
        assert_eq!(
            files(&self.untouched, skip),
            files(&self.root, skip),
            "patch did not reproduce the workspace:\n{}",
            diff.patch
        );
        diff
    }

    /// Applies `diff` to the untouched copy (a repository of its own, so `git apply`
    /// resolves paths from it and nothing above it).
    pub fn apply(&self, diff: &WorkspaceDiff) {
        if diff.patch.is_empty() {
            return;
        }
        let patch_file = self.untouched.with_extension("patch");
        fs::write(&patch_file, &diff.patch).unwrap();
        if !self.untouched.join(".git").exists() {
            git(&self.untouched, &["init", "-q"]);
        }
        let patch_arg = patch_file.to_str().unwrap();
        let check = git_command(&self.untouched, &["apply", "--check", patch_arg])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "git apply --check refused the patch: {}\n{}",
            String::from_utf8_lossy(&check.stderr),
            diff.patch
        );
        git(&self.untouched, &["apply", patch_arg]);
    }
}
