//! SWE-bench interop and git-sourced tasks: importing instances as a suite, exporting a
//! run as predictions, and running a task cloned from a git repository at a commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness_support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use evals::harness::Suite;
use evals::harness::task::{Expected, RepoSource};
use harness_support::*;

/// Two instances in the dataset's own layout (test lists as JSON-encoded strings).
fn instances_file(dir: &Path) -> std::path::PathBuf {
    let test_patch = "diff --git a/astropy/tests/test_sep.py b/astropy/tests/test_sep.py\n--- a/astropy/tests/test_sep.py\n+++ b/astropy/tests/test_sep.py\n@@ -1 +1,2 @@\n x = 1\n+y = 2\n";
    let first = json!({
        "repo": "astropy/astropy",
        "instance_id": "astropy__astropy-12907",
        "base_commit": "d16bfe05a744909de4b27f5875fe0d4ed41ce607",
        "patch": "diff --git a/astropy/sep.py b/astropy/sep.py\n",
        "test_patch": test_patch,
        "problem_statement": "Separability is wrong for nested models.",
        "hints_text": "Look at _cstack.",
        "created_at": "2022-03-03T15:14:54Z",
        "version": "4.3",
        "FAIL_TO_PASS": "[\"astropy/tests/test_sep.py::test_nested[cm0]\", \"astropy/tests/test_sep.py::test_it's\"]",
        "PASS_TO_PASS": "[\"astropy/tests/test_sep.py::test_old\"]",
        "environment_setup_commit": "298ccb478e6bf092953bca67a3d29dc6c35f6752"
    });
    let second = json!({
        "repo": "psf/requests",
        "instance_id": "psf__requests-2317",
        "base_commit": "091991be0da19de9108dbe5e3752917fea3d7fdc",
        "patch": "",
        "test_patch": "--- a/test_requests.py\n+++ b/test_requests.py\n",
        "problem_statement": "method = builtin_str(method) breaks binary methods.",
        "hints_text": "",
        "created_at": "2014-11-01T02:20:16Z",
        "version": "2.4",
        "FAIL_TO_PASS": "[\"test_requests.py::RequestsTestCase::test_binary_method\"]",
        "PASS_TO_PASS": "[]",
        "environment_setup_commit": "091991be0da19de9108dbe5e3752917fea3d7fdc"
    });
    let path = dir.join("instances.jsonl");
    std::fs::write(&path, format!("{first}\n{second}\n")).unwrap();
    path
}

#[test]
fn import_writes_a_loadable_suite_with_one_git_task_per_instance() {
    let dir = tempfile::tempdir().unwrap();
    let instances = instances_file(dir.path());
    let suite_dir = dir.path().join("swe");
    let run = evals(&[
        "swebench",
        "import",
        "--instances",
        instances.to_str().unwrap(),
        "--out",
        suite_dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
    assert!(stderr(&run).contains("wrote a suite of 2 task(s)"));

    let suite = Suite::load(&suite_dir).unwrap();
    assert_eq!(suite.name, "swe");
    assert!(
        suite
            .file
            .description
            .unwrap()
            .contains("official SWE-bench harness")
    );
    let task = suite
        .tasks
        .iter()
        .find(|t| t.id == "astropy__astropy-12907")
        .unwrap();
    assert_eq!(
        task.file.instruction,
        "Separability is wrong for nested models.\n\nHints:\nLook at _cstack."
    );
    assert_eq!(task.file.expected, Some(Expected::Pass));
    assert_eq!(task.file.tags, ["swebench", "astropy/astropy"]);
    let RepoSource::Git(repo) = &task.repo else {
        panic!("not a git task: {:?}", task.repo)
    };
    assert_eq!(repo.git_url, "https://github.com/astropy/astropy.git");
    assert_eq!(
        repo.commit.as_deref(),
        Some("d16bfe05a744909de4b27f5875fe0d4ed41ce607")
    );
    let check_dir = task.check_dir.as_ref().unwrap();
    let patch = std::fs::read_to_string(check_dir.join(".swebench/test.patch")).unwrap();
    assert!(patch.contains("+y = 2"));
    let script = std::fs::read_to_string(check_dir.join(".swebench/check.sh")).unwrap();
    assert!(
        script.contains("'astropy/tests/test_sep.py::test_nested[cm0]' 'astropy/tests/test_sep.py::test_it'\\''s'"),
        "{script}"
    );
    assert!(script.contains(
        "git checkout -q 'd16bfe05a744909de4b27f5875fe0d4ed41ce607' -- 'astropy/tests/test_sep.py'"
    ));
    assert!(task.dir.join("gold.patch").is_file());
    let other = suite
        .tasks
        .iter()
        .find(|t| t.id == "psf__requests-2317")
        .unwrap();
    assert_eq!(
        other.file.instruction,
        "method = builtin_str(method) breaks binary methods."
    );
    assert!(!other.dir.join("gold.patch").exists());
}

#[test]
fn import_of_a_line_missing_fields_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let instances = dir.path().join("bad.jsonl");
    std::fs::write(
        &instances,
        "\n{\"instance_id\": \"x__y-1\", \"repo\": \"x/y\"}\n",
    )
    .unwrap();
    let run = evals(&[
        "swebench",
        "import",
        "--instances",
        instances.to_str().unwrap(),
        "--out",
        dir.path().join("suite").to_str().unwrap(),
    ]);
    assert_eq!(code(&run), 2);
    assert!(
        stderr(&run).contains("bad.jsonl line 2: not a SWE-bench instance"),
        "{}",
        stderr(&run)
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A repository with two commits: `version.txt` says v1, then v2.
fn upstream(dir: &Path) -> (std::path::PathBuf, String) {
    let repo = dir.join("upstream");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("version.txt"), "v1\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("version.txt"), "v2\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "v2"]);
    (repo, first)
}

#[test]
fn git_task_runs_at_its_commit_and_exports_as_predictions() {
    let root = tempfile::tempdir().unwrap();
    let (upstream, first) = upstream(root.path());
    let url = upstream.to_str().unwrap();
    let suite = suite(root.path(), "name = \"git\"\n");
    task(
        &suite,
        "org__repo-1",
        &format!(
            r#"
instruction = "Bump the version."
check = '''test "$(git rev-parse HEAD)" = {first} && test "$(git remote get-url origin)" = {url} && grep -qx v1-fixed version.txt'''
[repo]
git_url = "{url}"
commit = "{first}"
"#
        ),
        Some(json!({"steps": [edit_step("version.txt", "v1", "v1-fixed"), done_step()]})),
        &[],
    );
    let out = root.path().join("out");
    let run = run_suite(&suite, &out, &["--scripted", "--repeat", "2"]);
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
    let report = read_json(&out.join("report.json"));
    for attempt in attempts(&report) {
        assert_eq!(attempt["passed"], true, "{attempt:#}");
    }

    let predictions = root.path().join("predictions.jsonl");
    let export = evals(&[
        "swebench",
        "export",
        "--report",
        out.join("report.json").to_str().unwrap(),
        "--out",
        predictions.to_str().unwrap(),
        "--model-name",
        "my-agent",
    ]);
    assert_eq!(code(&export), 0, "stderr: {}", stderr(&export));
    let lines: Vec<Value> = std::fs::read_to_string(&predictions)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["instance_id"], "org__repo-1");
    assert_eq!(lines[0]["model_name_or_path"], "my-agent");
    let patch = lines[0]["model_patch"].as_str().unwrap();
    assert!(patch.contains("-v1\n+v1-fixed"), "{patch}");
    assert_eq!(
        Some(patch),
        std::fs::read_to_string(out.join("tasks/org__repo-1-1/diff.patch"))
            .ok()
            .as_deref()
    );
}

#[test]
fn export_without_a_diff_gives_an_empty_patch_and_the_report_model() {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "name = \"nodiff\"\n");
    task(
        &suite,
        "a__b-1",
        "instruction = \"x\"\ncheck = \"true\"\n",
        None,
        &[],
    );
    let out = root.path().join("out");
    assert_eq!(code(&run_suite(&suite, &out, &["--scripted"])), 0);
    let predictions = root.path().join("p.jsonl");
    let export = evals(&[
        "swebench",
        "export",
        "--report",
        out.join("report.json").to_str().unwrap(),
        "--out",
        predictions.to_str().unwrap(),
    ]);
    assert_eq!(code(&export), 0, "stderr: {}", stderr(&export));
    let line: Value =
        serde_json::from_str(std::fs::read_to_string(&predictions).unwrap().trim()).unwrap();
    assert_eq!(
        line,
        json!({"instance_id": "a__b-1", "model_name_or_path": "scripted", "model_patch": ""})
    );
}
