#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The file tools never read or write inside a `.git` directory (or a `.git` file, as
//! worktrees and submodules have): an edit of `.git/config` that sets `core.fsmonitor`,
//! or a new hook, would run a command on the user's next `git status` or commit. Git's
//! own name rules apply (`.GIT`, `.git.`, `git~1` name the same folder on case-folding or
//! NTFS file systems), at any depth, through symlinks too. Git state changes go through
//! git commands (run_shell_command).

mod file_tools_support;

use std::os::unix::fs::symlink;

use file_tools_support::workspace;
use serde_json::json;
use tools::apply_patch::ApplyPatchTool;
use tools::list_directory::ListDirectoryTool;
use tools::search_code::SearchCodeTool;
use tools::{Tool, ToolError, ToolOutput};

const CONFIG: &str = "[core]\n\tbare = false\n";

/// The message of a refused call (a jail refusal or a tool's own).
fn rejected(result: Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::Rejected(message)) => message,
        Err(err @ ToolError::Jail(_)) => err.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn git_refusal(message: &str) {
    assert!(
        message.contains("inside a `.git` directory"),
        "not a .git refusal: {message}"
    );
    assert!(
        message.contains("git commands"),
        "the refusal says what to do instead: {message}"
    );
}

#[tokio::test]
async fn edit_of_git_config_is_refused_and_the_file_is_untouched() {
    let ws = workspace();
    ws.write(".git/config", CONFIG);
    let message = rejected(
        ws.edit(json!({
            "file_path": ".git/config",
            "old_text": "bare = false",
            "new_text": "bare = false\n\tfsmonitor = touch /tmp/pwned",
        }))
        .await,
    );
    git_refusal(&message);
    assert_eq!(ws.contents(".git/config"), CONFIG);
}

#[tokio::test]
async fn creating_a_hook_is_refused_at_any_depth_and_in_any_spelling() {
    let ws = workspace();
    ws.write(".git/HEAD", "ref: refs/heads/main\n");
    ws.write("vendor/dep/.git/HEAD", "ref: refs/heads/main\n");
    for path in [
        ".git/hooks/pre-commit",
        "./.git/hooks/pre-commit",
        "src/../.git/hooks/pre-commit",
        "vendor/dep/.git/hooks/post-checkout",
        ".GIT/hooks/pre-commit",
        ".Git/config",
        ".git./config",
        ".git /config",
        "git~1/config",
        // Ignorable code points HFS+ drops from names (a zero-width joiner here).
        ".g\u{200d}it/config",
        "brand-new/.git/config",
    ] {
        let message = rejected(
            ws.edit(json!({"file_path": path, "old_text": "", "new_text": "#!/bin/sh\n"}))
                .await,
        );
        git_refusal(&message);
    }
    assert!(!ws.path(".git/hooks").exists());
    assert!(!ws.path("vendor/dep/.git/hooks").exists());
    assert!(!ws.path("brand-new").exists());
}

#[tokio::test]
async fn a_git_file_of_a_worktree_is_refused_too() {
    let ws = workspace();
    ws.write("sub/.git", "gitdir: ../.git/modules/sub\n");
    let message = rejected(
        ws.edit(json!({"file_path": "sub/.git", "old_text": "modules/sub", "new_text": "x"}))
            .await,
    );
    git_refusal(&message);
    assert_eq!(ws.contents("sub/.git"), "gitdir: ../.git/modules/sub\n");
}

#[tokio::test]
async fn a_symlink_into_git_is_refused() {
    let ws = workspace();
    ws.write(".git/config", CONFIG);
    symlink(ws.path(".git"), ws.path("innocent")).unwrap();
    symlink(ws.path(".git/config"), ws.path("settings.ini")).unwrap();
    for path in ["innocent/config", "settings.ini"] {
        git_refusal(&rejected(
            ws.edit(json!({"file_path": path, "old_text": "bare", "new_text": "worktree"}))
                .await,
        ));
        git_refusal(&rejected(ws.read(json!({"file_path": path})).await));
    }
    assert_eq!(ws.contents(".git/config"), CONFIG);
}

#[tokio::test]
async fn reading_git_internals_is_refused() {
    let ws = workspace();
    ws.write(".git/config", CONFIG);
    git_refusal(&rejected(
        ws.read(json!({"file_path": ".git/config"})).await,
    ));
}

#[tokio::test]
async fn apply_patch_into_git_is_refused_and_changes_nothing() {
    let ws = workspace();
    ws.write(".git/config", CONFIG);
    ws.write("README.md", "hello\n");
    let patch = "*** Begin Patch\n*** Update File: README.md\n@@\n-hello\n+hello, world\n\
                 *** Add File: .git/hooks/pre-commit\n+#!/bin/sh\n+touch /tmp/pwned\n*** End Patch";
    let message = rejected(ApplyPatchTool.call(&ws.ctx, json!({"input": patch})).await);
    git_refusal(&message);
    assert_eq!(ws.contents("README.md"), "hello\n");
    assert!(!ws.path(".git/hooks").exists());
    let moved = "*** Begin Patch\n*** Update File: README.md\n*** Move to: .git/info/exclude\n\
                 @@\n-hello\n+*\n*** End Patch";
    git_refusal(&rejected(
        ApplyPatchTool.call(&ws.ctx, json!({"input": moved})).await,
    ));
    assert_eq!(ws.contents("README.md"), "hello\n");
}

#[tokio::test]
async fn search_and_list_refuse_git_spellings_too() {
    let ws = workspace();
    ws.write(".git/config", CONFIG);
    for path in [".git", ".GIT", "git~1"] {
        git_refusal(&rejected(
            SearchCodeTool
                .call(&ws.ctx, json!({"pattern": "bare", "path": path}))
                .await,
        ));
        git_refusal(&rejected(
            ListDirectoryTool.call(&ws.ctx, json!({"path": path})).await,
        ));
    }
}

#[tokio::test]
async fn names_that_only_start_like_git_are_ordinary_files() {
    let ws = workspace();
    for path in [
        ".gitignore",
        ".github/workflows/ci.yml",
        ".git-blame-ignore-revs",
        "git/x",
    ] {
        ws.edit(json!({"file_path": path, "old_text": "", "new_text": "ok\n"}))
            .await
            .unwrap_or_else(|err| panic!("{path}: {err}"));
        assert_eq!(ws.contents(path), "ok\n");
    }
}
