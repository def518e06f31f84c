#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::*;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn suite_with_task(task_toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("suite.toml"), "name = \"unit\"\n");
    write(&dir.path().join("only-task/task.toml"), task_toml);
    dir
}

fn load_error(dir: &Path) -> String {
    Suite::load(dir).unwrap_err().to_string()
}

#[test]
fn full_task_loads_with_every_field() {
    let dir = suite_with_task(
        r#"
id = "py-fix"
instruction = "Fix add()."
target_file = "calc.py"
setup = "true"
check = "python3 -m unittest -q"
tags = ["python", "edit"]
expected = "fail"
[limits]
max_turns = 10
max_tokens = 2000
timeout_secs = 120
check_timeout_secs = 60
"#,
    );
    write(&dir.path().join("only-task/repo/calc.py"), "x = 1\n");
    write(&dir.path().join("only-task/check/test_calc.py"), "");
    write(
        &dir.path().join("only-task/script.json"),
        r#"{"model": "m", "steps": [{"type": "message", "content": "done"}]}"#,
    );
    let suite = Suite::load(dir.path()).unwrap();
    assert_eq!(suite.name, "unit");
    let task = &suite.tasks[0];
    assert_eq!(task.id, "py-fix");
    assert_eq!(task.file.expected, Some(Expected::Fail));
    assert_eq!(task.file.limits.timeout_secs(), 120);
    assert_eq!(task.file.limits.max_turns, Some(10));
    assert_eq!(task.file.tags, ["python", "edit"]);
    assert!(matches!(&task.repo, RepoSource::Folder(path) if path.ends_with("repo")));
    assert!(task.check_dir.is_some());
    assert_eq!(task.script().unwrap().unwrap().model, "m");
}

#[test]
fn minimal_task_takes_its_id_from_the_folder_and_default_limits() {
    let dir = suite_with_task("instruction = \"do it\"\ncheck = \"true\"\n");
    let suite = Suite::load(dir.path()).unwrap();
    let task = &suite.tasks[0];
    assert_eq!(task.id, "only-task");
    assert_eq!(task.repo, RepoSource::Empty);
    assert_eq!(task.file.expected, None);
    assert_eq!(task.file.limits.timeout_secs(), DEFAULT_TIMEOUT_SECS);
    assert_eq!(
        task.file.limits.check_timeout_secs(),
        DEFAULT_CHECK_TIMEOUT_SECS
    );
    assert!(task.script().unwrap().is_none());
}

#[test]
fn suite_name_defaults_to_the_folder_name() {
    let dir = tempfile::tempdir().unwrap();
    let suite_dir = dir.path().join("my-suite");
    write(&suite_dir.join("suite.toml"), "description = \"d\"\n");
    assert_eq!(Suite::load(&suite_dir).unwrap().name, "my-suite");
}

#[test]
fn unknown_task_field_is_an_error_naming_the_file_and_the_field() {
    let dir = suite_with_task("instruction = \"x\"\ncheck = \"true\"\ntimeout = 5\n");
    let err = load_error(dir.path());
    assert!(err.contains("only-task/task.toml"), "{err}");
    assert!(err.contains("timeout"), "{err}");
}

#[test]
fn unknown_limits_field_is_an_error() {
    let dir = suite_with_task("instruction = \"x\"\ncheck = \"true\"\n[limits]\ntimeout_sec = 5\n");
    let err = load_error(dir.path());
    assert!(err.contains("timeout_sec"), "{err}");
}

#[test]
fn missing_check_is_an_error_naming_the_file_and_the_field() {
    let dir = suite_with_task("instruction = \"x\"\n");
    let err = load_error(dir.path());
    assert!(err.contains("task.toml"), "{err}");
    assert!(err.contains("check"), "{err}");
}

#[test]
fn missing_instruction_is_an_error() {
    let dir = suite_with_task("check = \"true\"\n");
    assert!(load_error(dir.path()).contains("instruction"));
}

#[test]
fn blank_instruction_is_an_error() {
    let dir = suite_with_task("instruction = \"  \"\ncheck = \"true\"\n");
    assert!(load_error(dir.path()).contains("`instruction` is empty"));
}

#[test]
fn expected_other_than_pass_or_fail_is_an_error() {
    let dir = suite_with_task("instruction = \"x\"\ncheck = \"true\"\nexpected = \"maybe\"\n");
    assert!(load_error(dir.path()).contains("maybe"));
}

#[test]
fn zero_limit_is_an_error() {
    let dir =
        suite_with_task("instruction = \"x\"\ncheck = \"true\"\n[limits]\ntimeout_secs = 0\n");
    assert!(load_error(dir.path()).contains("timeout_secs = 0"));
}

#[test]
fn repo_folder_and_git_section_together_are_an_error() {
    let dir = suite_with_task(
        "instruction = \"x\"\ncheck = \"true\"\n[repo]\ngit_url = \"https://example.invalid/r\"\n",
    );
    write(&dir.path().join("only-task/repo/a.txt"), "a");
    assert!(load_error(dir.path()).contains("keep one of them"));
}

#[test]
fn git_section_becomes_the_repo_source() {
    let dir = suite_with_task(
        "instruction = \"x\"\ncheck = \"true\"\n[repo]\ngit_url = \"https://example.invalid/r\"\ncommit = \"abc\"\n",
    );
    let suite = Suite::load(dir.path()).unwrap();
    assert_eq!(
        suite.tasks[0].repo,
        RepoSource::Git(GitRepo {
            git_url: "https://example.invalid/r".into(),
            commit: Some("abc".into())
        })
    );
}

#[test]
fn duplicate_task_ids_are_an_error() {
    let dir = suite_with_task("id = \"same\"\ninstruction = \"x\"\ncheck = \"true\"\n");
    write(
        &dir.path().join("other/task.toml"),
        "id = \"same\"\ninstruction = \"y\"\ncheck = \"true\"\n",
    );
    assert!(load_error(dir.path()).contains("`same` is used by another task"));
}

#[test]
fn id_that_cannot_name_a_folder_is_an_error() {
    let dir = suite_with_task("id = \"../escape\"\ninstruction = \"x\"\ncheck = \"true\"\n");
    assert!(load_error(dir.path()).contains("may only hold"));
}

#[test]
fn task_folder_without_task_toml_is_an_error_but_hidden_folders_are_skipped() {
    let dir = suite_with_task("instruction = \"x\"\ncheck = \"true\"\n");
    std::fs::create_dir_all(dir.path().join(".cache")).unwrap();
    assert_eq!(Suite::load(dir.path()).unwrap().tasks.len(), 1);
    std::fs::create_dir_all(dir.path().join("stray")).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("stray") && err.contains("no task.toml"),
        "{err}"
    );
}

#[test]
fn missing_suite_toml_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_error(dir.path()).contains("suite.toml"));
}

#[test]
fn unknown_suite_field_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("suite.toml"),
        "name = \"s\"\npass_rate = 1.0\n",
    );
    let err = load_error(dir.path());
    assert!(
        err.contains("suite.toml") && err.contains("pass_rate"),
        "{err}"
    );
}

#[test]
fn expected_pass_rate_outside_zero_to_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("suite.toml"), "expected_pass_rate = 80\n");
    assert!(load_error(dir.path()).contains("between 0 and 1"));
}

#[test]
fn malformed_script_is_an_error_naming_the_script() {
    let dir = suite_with_task("instruction = \"x\"\ncheck = \"true\"\n");
    write(
        &dir.path().join("only-task/script.json"),
        "{\"steps\": [{\"type\": \"nope\"}]}",
    );
    let suite = Suite::load(dir.path()).unwrap();
    let err = suite.tasks[0].script().unwrap_err().to_string();
    assert!(err.contains("script.json"), "{err}");
}
