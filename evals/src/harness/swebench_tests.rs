#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn test_lists_decode_from_encoded_strings_and_plain_lists() {
    let encoded: TestList = serde_json::from_str(r#""[\"t.py::a\", \"t.py::b\"]""#).unwrap();
    assert_eq!(encoded.tests().unwrap(), ["t.py::a", "t.py::b"]);
    let plain: TestList = serde_json::from_str(r#"["t.py::c"]"#).unwrap();
    assert_eq!(plain.tests().unwrap(), ["t.py::c"]);
}

#[test]
fn test_list_that_is_not_json_is_an_error_quoting_it() {
    let broken = TestList::Encoded("t.py::a".into());
    let err = broken.tests().unwrap_err();
    assert!(err.contains("t.py::a"), "{err}");
}

#[test]
fn patched_files_come_from_both_sides_of_the_diff_once_each() {
    let patch = "diff --git a/tests/test_x.py b/tests/test_x.py\n\
                 --- a/tests/test_x.py\n+++ b/tests/test_x.py\n@@ -1 +1 @@\n-a\n+b\n\
                 diff --git a/tests/new.py b/tests/new.py\nnew file mode 100644\n\
                 --- /dev/null\n+++ b/tests/new.py\n@@ -0,0 +1 @@\n+c\n";
    assert_eq!(patched_files(patch), ["tests/test_x.py", "tests/new.py"]);
}

#[test]
fn shell_quote_survives_single_quotes() {
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
}

#[test]
fn check_script_restores_test_files_applies_the_patch_and_runs_the_tests() {
    let instance = Instance {
        instance_id: "o__r-1".into(),
        repo: "o/r".into(),
        base_commit: "abc123".into(),
        problem_statement: "bug".into(),
        hints_text: String::new(),
        test_patch: "--- a/t.py\n+++ b/t.py\n".into(),
        patch: String::new(),
        fail_to_pass: TestList::List(vec!["t.py::test_it[a b]".into()]),
        pass_to_pass: TestList::default(),
    };
    let script = check_script(&instance, &instance.fail_to_pass.tests().unwrap());
    assert!(script.contains("set -euo pipefail"));
    assert!(script.contains("git checkout -q 'abc123' -- 't.py' 2>/dev/null || rm -f -- 't.py'"));
    assert!(script.contains("git apply -v .swebench/test.patch\n"));
    assert!(
        script.ends_with("python -m pytest -x -q 't.py::test_it[a b]'\n"),
        "{script}"
    );
    assert!(script.contains("official SWE-bench harness"));
}
