//! `diff.patch` from a real run applies with `git apply` to an untouched copy, in a git
//! repository and in a plain folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::*;

const PATCH: &str = "*** Begin Patch
*** Add File: docs/new.md
+# New
+written by the agent
*** Delete File: old.txt
*** Update File: src/main.py
@@
 def main():
-    print('hello')
+    print('hello, world')
*** End Patch";

fn seed(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.py"), "def main():\n    print('hello')\n").unwrap();
    std::fs::write(dir.join("old.txt"), "obsolete\n").unwrap();
    std::fs::write(dir.join("keep.txt"), "no final newline").unwrap();
}

async fn edit_run(ws: &std::path::Path) -> Run {
    let out = tempfile::tempdir().unwrap().keep();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [{"name": "apply_patch", "arguments": {"input": PATCH}}]},
        {"type": "tool_calls", "calls": [{"name": "edit_file_content", "arguments": {
            "file_path": "keep.txt", "old_text": "no final", "new_text": "still no final"}}]},
        {"type": "message", "content": "edited"}
    ]}))
    .await;
    run_agent(ws, &out, &server.base_url(), &["edit files"], &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_applies_in_a_plain_folder() {
    let ws = tempfile::tempdir().unwrap();
    let pristine = tempfile::tempdir().unwrap();
    seed(ws.path());
    copy_tree(ws.path(), pristine.path());
    let run = edit_run(ws.path()).await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let diff = run.diff();
    assert!(
        diff.contains("docs/new.md") && diff.contains("old.txt"),
        "{diff}"
    );
    git_apply(pristine.path(), &diff);
    assert_eq!(tree_contents(pristine.path()), tree_contents(ws.path()));
    assert_eq!(run.result()["files_changed"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_applies_in_a_git_repository_and_leaves_prior_changes_out() {
    let ws = tempfile::tempdir().unwrap();
    seed(ws.path());
    std::fs::write(ws.path().join(".gitignore"), "build/\n").unwrap();
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "-A"]);
    git(ws.path(), &["commit", "-qm", "start"]);
    // An uncommitted change from before the run is part of the starting state.
    std::fs::write(
        ws.path().join("keep.txt"),
        "no final newline, edited by hand",
    )
    .unwrap();
    let pristine = tempfile::tempdir().unwrap();
    copy_tree(ws.path(), pristine.path());
    std::fs::create_dir_all(ws.path().join("build")).unwrap();
    std::fs::write(ws.path().join("build/artifact.bin"), [0u8, 1, 2]).unwrap();

    let run = edit_run(ws.path()).await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let diff = run.diff();
    assert!(
        !diff.contains("edited by hand\n-"),
        "prior change leaked into the diff: {diff}"
    );
    assert!(
        !diff.contains("artifact.bin"),
        "ignored file in the diff: {diff}"
    );
    git_apply(pristine.path(), &diff);
    let mut expected = tree_contents(ws.path());
    expected.remove("build/artifact.bin");
    assert_eq!(tree_contents(pristine.path()), expected);
}
