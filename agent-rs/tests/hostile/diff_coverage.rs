//! Every change the agent's tools made is in `diff.patch`, which applies whole; what
//! truly cannot be carried is listed in `result.json` (`diff_left_out`) and on stderr,
//! and the run still completes.

use std::path::Path;

use crate::support::git;
use crate::{Case, edit, left_out, shell};

/// About 13 MB of numbered lines: over the size the plain-folder snapshot keeps in memory.
fn large_text() -> String {
    (0..1_100_000).map(|n| format!("line {n}\n")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_text_file_in_a_plain_folder_gets_a_real_patch() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("big.txt"), large_text()).unwrap();
        std::fs::write(dir.join("small.txt"), "small\n").unwrap();
    });
    let run = case
        .run(
            vec![
                shell("sed -i 's/^line 500000$/LINE FIVE HUNDRED THOUSAND/' big.txt"),
                edit("small.txt", "small", "still small"),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let diff = run.diff();
    assert!(
        !diff.contains("Binary files"),
        "a section git apply rejects"
    );
    assert!(diff.contains("-line 500000\n+LINE FIVE HUNDRED THOUSAND\n"));
    assert!(
        diff.len() < 10_000,
        "the patch carries the hunk, not the file"
    );
    assert_eq!(left_out(&run), Vec::<serde_json::Value>::new());
    case.apply_and_compare(&run);
}

/// A git work tree with an ignored settings file and an untracked repository of its own.
fn repo_with_ignored_and_nested(dir: &Path) {
    std::fs::write(dir.join(".gitignore"), "local/\n").unwrap();
    std::fs::create_dir_all(dir.join("local")).unwrap();
    std::fs::write(dir.join("local/settings.ini"), "debug = false\n").unwrap();
    std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "start"]);
    let dep = dir.join("vendor/dep");
    std::fs::create_dir_all(&dep).unwrap();
    std::fs::write(dep.join("lib.py"), "def dep():\n    return 1\n").unwrap();
    git(&dep, &["init", "-q"]);
    git(&dep, &["add", "-A"]);
    git(&dep, &["commit", "-qm", "dep"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_to_ignored_files_and_nested_repositories_are_in_the_patch() {
    let case = Case::new(repo_with_ignored_and_nested);
    let run = case
        .run(
            vec![
                edit("local/settings.ini", "debug = false", "debug = true"),
                edit("vendor/dep/lib.py", "return 1", "return 2"),
                shell("printf 'EXTRA = 1\\n' > vendor/dep/extra.py"),
                edit("app.py", "'app'", "'app v2'"),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let diff = run.diff();
    for path in [
        "local/settings.ini",
        "vendor/dep/lib.py",
        "vendor/dep/extra.py",
        "app.py",
    ] {
        assert!(
            diff.contains(&format!("b/{path}")),
            "{path} missing:\n{diff}"
        );
    }
    assert_eq!(left_out(&run), Vec::<serde_json::Value>::new());
    assert_eq!(run.result()["files_changed"], 4);
    case.apply_and_compare(&run);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_to_an_ignored_file_in_a_plain_folder_is_in_the_patch() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join(".gitignore"), "*.local\n").unwrap();
        std::fs::write(dir.join("db.local"), "port = 1\n").unwrap();
    });
    let run = case
        .run(vec![edit("db.local", "port = 1", "port = 2")], &[])
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.diff().contains("+port = 2\n"), "{}", run.diff());
    case.apply_and_compare(&run);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_created_during_the_run_is_listed_as_left_out() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        git(dir, &["init", "-q"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "start"]);
    });
    let run = case
        .run(
            vec![
                shell("mkdir scratch && cd scratch && git init -q && echo x > notes.txt"),
                edit("app.py", "'app'", "'app v2'"),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let left = left_out(&run);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["path"], "scratch");
    assert!(left[0]["reason"].as_str().unwrap().contains("repository"));
    assert!(
        run.stderr().contains("diff.patch leaves out scratch"),
        "{}",
        run.stderr()
    );
    case.apply(&run);
}

/// `depth` nested directories named `d`, relative.
fn deep_path(depth: usize) -> String {
    vec!["d"; depth].join("/")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_workspace_with_a_very_deep_untracked_tree_completes() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        git(dir, &["init", "-q"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "start"]);
        let deep = dir.join(deep_path(120));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("leaf.txt"), "deep\n").unwrap();
    });
    let run = case
        .run(vec![edit("app.py", "'app'", "'app v2'")], &[])
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.diff().contains("+print('app v2')"), "{}", run.diff());
    let left = left_out(&run);
    assert!(!left.is_empty(), "the deep tree is reported");
    assert!(
        left.iter()
            .all(|entry| entry["path"].as_str().unwrap().starts_with("d/d/d/")),
        "{left:?}"
    );
    assert!(
        left[0]["reason"].as_str().unwrap().contains("deep"),
        "{left:?}"
    );
    case.apply(&run);
}

/// 25 nested directories of 200-byte names (a path past PATH_MAX) with `leaf.txt` at
/// the bottom; the shell command that changes that file, one relative step at a time.
fn long_path_tree(dir: &Path) -> String {
    let name = "n".repeat(200);
    let steps = format!("for i in $(seq 25); do cd {name}; done");
    let script =
        format!("for i in $(seq 25); do mkdir {name} && cd {name}; done; echo x > leaf.txt");
    let status = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success());
    format!("({steps} && echo changed > leaf.txt)")
}

/// libgit2 passes over a path this long without an error: the change below it must be
/// reported all the same, not vanish.
/// A tree too deep for libgit2 made by a command during the run: the other changes are
/// in the patch, the tree is reported.
#[tokio::test(flavor = "multi_thread")]
async fn a_deep_tree_made_during_the_run_is_reported_and_the_rest_applies() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        git(dir, &["init", "-q"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "start"]);
    });
    let deep = deep_path(120);
    let run = case
        .run(
            vec![
                shell(&format!(
                    "mkdir -p {deep} && echo x > {deep}/leaf.txt && echo y > top.txt"
                )),
                edit("app.py", "'app'", "'app v2'"),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.diff().contains("b/top.txt"), "{}", run.diff());
    assert!(run.diff().contains("+print('app v2')"), "{}", run.diff());
    let left = left_out(&run);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0]["reason"].as_str().unwrap().contains("deep"));
    case.apply(&run);
}

/// A repository added to its parent as a bare gitlink (`git add` of a cloned folder, no
/// `.gitmodules`): changes inside it are still in the patch, under its path.
#[tokio::test(flavor = "multi_thread")]
async fn changes_inside_an_embedded_repository_without_gitmodules_are_in_the_patch() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        let dep = dir.join("dep");
        std::fs::create_dir_all(&dep).unwrap();
        std::fs::write(dep.join("lib.py"), "x = 1\n").unwrap();
        git(&dep, &["init", "-q"]);
        git(&dep, &["add", "-A"]);
        git(&dep, &["commit", "-qm", "dep"]);
        git(dir, &["init", "-q"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "start"]);
    });
    let run = case
        .run(
            vec![
                edit("dep/lib.py", "x = 1", "x = 2"),
                shell("echo new > dep/new.py"),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for path in ["dep/lib.py", "dep/new.py"] {
        assert!(run.diff().contains(&format!("b/{path}")), "{}", run.diff());
    }
    assert_eq!(left_out(&run), Vec::<serde_json::Value>::new());
    case.apply_and_compare(&run);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_workspace_with_a_path_past_the_system_limit_reports_it() {
    let mut change = String::new();
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        git(dir, &["init", "-q"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "start"]);
        change = long_path_tree(dir);
    });
    let run = case
        .run(
            vec![shell(&change), edit("app.py", "'app'", "'app v2'")],
            &[],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.diff().contains("+print('app v2')"), "{}", run.diff());
    assert!(!run.diff().contains("leaf.txt"), "{}", run.diff());
    let left = left_out(&run);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0]["path"].as_str().unwrap().starts_with("nnnn"));
    assert!(
        left[0]["reason"].as_str().unwrap().contains("too long"),
        "{left:?}"
    );
    assert!(
        run.stderr().contains("diff.patch leaves out nnnn"),
        "{}",
        run.stderr().chars().take(2000).collect::<String>()
    );
    case.apply(&run);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_folder_with_a_path_past_the_system_limit_completes() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        long_path_tree(dir);
    });
    let run = case
        .run(vec![edit("app.py", "'app'", "'app v2'")], &[])
        .await;
    assert_eq!(
        run.code(),
        0,
        "{}",
        run.stderr().chars().take(2000).collect::<String>()
    );
    assert!(run.diff().contains("+print('app v2')"));
    let left = left_out(&run);
    assert!(!left.is_empty(), "the unreadable part is reported");
    for entry in &left {
        assert!(
            entry["path"].as_str().unwrap().len() < 1_000,
            "paths are shortened"
        );
    }
    assert!(run.stderr().len() < 20_000, "stderr stays readable");
    case.apply(&run);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_folder_inside_the_workspace_is_refused_and_not_created() {
    let case = Case::new(|dir| std::fs::write(dir.join("a.txt"), "a\n").unwrap());
    let inside = case.root().join("out/run1");
    let output = std::process::Command::new(crate::support::AGENT)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .args(["run", "--model", "m", "--dir"])
        .arg(case.root())
        .arg("--output")
        .arg(&inside)
        .arg("task")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("inside the workspace"));
    assert!(
        !case.root().join("out").exists(),
        "the refused folder was created"
    );
}

/// The same through a symlink outside that leads in, and with the workspace itself.
#[test]
fn an_output_folder_reached_through_a_symlink_or_the_workspace_itself_is_refused() {
    let case = Case::new(|dir| std::fs::write(dir.join("a.txt"), "a\n").unwrap());
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(case.root(), outside.path().join("link")).unwrap();
    for target in [
        outside.path().join("link/out/run1"),
        case.root().to_path_buf(),
    ] {
        let output = std::process::Command::new(crate::support::AGENT)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
            .args(["run", "--model", "m", "--dir"])
            .arg(case.root())
            .arg("--output")
            .arg(&target)
            .arg("task")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{target:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("inside the workspace"));
    }
    assert!(
        !case.root().join("out").exists(),
        "the refused folder was created"
    );
    assert_eq!(
        std::fs::read_dir(case.root()).unwrap().count(),
        1,
        "nothing was written in the workspace"
    );
}
