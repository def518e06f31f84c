use std::fs;
use std::os::unix::fs::symlink;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::config::ToolsConfig;
use crate::jail::{JailError, WorkspaceJail};

struct Fixture {
    workspace: tempfile::TempDir,
    outside: tempfile::TempDir,
    ctx: ToolContext,
}

impl Fixture {
    fn with_config(config: ToolsConfig) -> Self {
        let workspace = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let jail = WorkspaceJail::new(workspace.path()).unwrap();
        let ctx = ToolContext::new(jail, Arc::new(config));
        Self {
            workspace,
            outside,
            ctx,
        }
    }

    fn new() -> Self {
        Self::with_config(ToolsConfig::default())
    }

    fn write(&self, relative: &str) {
        let path = self.workspace.path().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }

    async fn call(&self, args: Value) -> Result<ToolOutput, ToolError> {
        ListDirectoryTool.call(&self.ctx, args).await
    }

    async fn ok(&self, args: Value) -> String {
        let output = self.call(args).await.unwrap();
        assert!(output.success, "{}", output.content);
        output.content
    }
}

#[tokio::test]
async fn default_listing_is_a_sorted_two_level_tree() {
    let fx = Fixture::new();
    fx.write("src/main.rs");
    fx.write("src/lib.rs");
    fx.write("src/deep/inner.rs");
    fx.write("Cargo.toml");
    fx.write("README.md");
    let content = fx.ok(json!({})).await;
    assert_eq!(
        content,
        "./\nCargo.toml\nREADME.md\nsrc/\n  deep/\n  lib.rs\n  main.rs"
    );
}

#[tokio::test]
async fn depth_one_lists_direct_children_only() {
    let fx = Fixture::new();
    fx.write("src/lib.rs");
    fx.write("a.txt");
    let content = fx.ok(json!({"path": ".", "depth": 1})).await;
    assert_eq!(content, "./\na.txt\nsrc/");
}

#[tokio::test]
async fn depth_is_clamped_to_ten_levels() {
    let fx = Fixture::new();
    let deep: String = (1..=12).map(|level| format!("d{level}/")).collect();
    fx.write(&format!("{deep}leaf.txt"));
    let content = fx.ok(json!({"depth": 100})).await;
    assert!(
        content.contains(&format!("{}d10/", "  ".repeat(9))),
        "{content}"
    );
    assert!(!content.contains("d11"), "{content}");
    let zero = fx.ok(json!({"depth": 0})).await;
    assert_eq!(zero, "./\nd1/");
}

#[tokio::test]
async fn a_subdirectory_is_listed_with_its_workspace_path() {
    let fx = Fixture::new();
    fx.write("src/lib.rs");
    let content = fx.ok(json!({"path": "src"})).await;
    assert_eq!(content, "src/\nlib.rs");
}

#[tokio::test]
async fn gitignored_entries_and_git_are_hidden_but_dotfiles_are_shown() {
    let fx = Fixture::new();
    fs::write(fx.workspace.path().join(".gitignore"), "target/\n*.log\n").unwrap();
    fx.write("target/debug/app");
    fx.write("run.log");
    fx.write(".git/HEAD");
    fx.write(".github/workflows/ci.yml");
    fx.write("src/lib.rs");
    let content = fx.ok(json!({})).await;
    assert_eq!(
        content,
        "./\n.github/\n  workflows/\n.gitignore\nsrc/\n  lib.rs"
    );
}

#[tokio::test]
async fn entries_beyond_the_limit_are_counted_not_shown() {
    let mut config = ToolsConfig::default();
    config.search.list_max_entries = 3;
    let fx = Fixture::with_config(config);
    for name in ["a", "b", "c", "d", "e"] {
        fx.write(name);
    }
    let output = fx.call(json!({})).await.unwrap();
    assert!(
        output
            .content
            .starts_with("./\na\nb\nc\n[... 2 more entries not shown (limit 3)"),
        "{}",
        output.content
    );
    assert_eq!(output.details["not_shown"], 2);
}

#[tokio::test]
async fn symlinks_are_shown_but_not_followed() {
    let fx = Fixture::new();
    fs::write(fx.outside.path().join("secret.txt"), "s").unwrap();
    symlink(fx.outside.path(), fx.workspace.path().join("out")).unwrap();
    symlink(
        fx.outside.path().join("secret.txt"),
        fx.workspace.path().join("leak.txt"),
    )
    .unwrap();
    let content = fx.ok(json!({"depth": 3})).await;
    assert_eq!(content, "./\nleak.txt -> (symlink)\nout -> (symlink)");
}

#[tokio::test]
async fn an_empty_directory_says_so() {
    let fx = Fixture::new();
    let content = fx.ok(json!({})).await;
    assert!(content.starts_with("./\n(empty"), "{content}");
}

#[tokio::test]
async fn a_file_path_is_rejected_with_a_hint() {
    let fx = Fixture::new();
    fx.write("a.txt");
    let err = fx.call(json!({"path": "a.txt"})).await.unwrap_err();
    assert!(
        matches!(&err, ToolError::Rejected(m) if m.contains("is a file")),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_path_is_an_io_error_naming_it() {
    let fx = Fixture::new();
    let err = fx.call(json!({"path": "nope"})).await.unwrap_err();
    assert!(matches!(&err, ToolError::Io { .. }), "{err}");
    assert!(err.to_string().contains("`nope`"), "{err}");
}

#[tokio::test]
async fn the_git_directory_cannot_be_listed() {
    let fx = Fixture::new();
    fx.write(".git/HEAD");
    let err = fx.call(json!({"path": ".git"})).await.unwrap_err();
    assert!(
        matches!(err, ToolError::Jail(JailError::GitDir { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn paths_escaping_the_workspace_are_refused() {
    let fx = Fixture::new();
    let outside = fx.outside.path().to_str().unwrap().to_string();
    for path in ["..", "a/../../b", outside.as_str(), "/"] {
        let err = fx.call(json!({"path": path})).await.unwrap_err();
        assert!(
            matches!(err, ToolError::Jail(JailError::Escapes { .. })),
            "{path}: {err}"
        );
    }
}

#[tokio::test]
async fn a_symlinked_directory_leading_outside_is_refused() {
    let fx = Fixture::new();
    symlink(fx.outside.path(), fx.workspace.path().join("out")).unwrap();
    let err = fx.call(json!({"path": "out"})).await.unwrap_err();
    assert!(
        matches!(err, ToolError::Jail(JailError::SymlinkEscapes { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_argument_shapes_are_invalid_arguments() {
    let fx = Fixture::new();
    for args in [
        json!({"path": 3}),
        json!({"depth": "two"}),
        json!({"depth": -1}),
        json!({"recursive": true}),
    ] {
        let err = fx.call(args.clone()).await.unwrap_err();
        assert!(
            matches!(err, ToolError::InvalidArguments { .. }),
            "{args}: {err}"
        );
    }
}

#[test]
fn the_tool_only_reads() {
    assert!(!ListDirectoryTool.mutates());
    let schema = ListDirectoryTool.parameters();
    assert!(schema["properties"].get("path").is_some());
    assert!(schema["properties"].get("depth").is_some());
}
