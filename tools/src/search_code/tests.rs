use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
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
    fn new() -> Self {
        Self::with_config(ToolsConfig::default())
    }

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

    fn write(&self, relative: &str, contents: impl AsRef<[u8]>) {
        let path = self.workspace.path().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn root(&self) -> &Path {
        self.workspace.path()
    }

    async fn call(&self, args: Value) -> Result<ToolOutput, ToolError> {
        SearchCodeTool.call(&self.ctx, args).await
    }

    async fn ok(&self, args: Value) -> String {
        let output = self.call(args).await.unwrap();
        assert!(output.success, "{}", output.content);
        output.content
    }
}

/// The `path:line:text` lines of an output, without the summary.
fn match_lines(content: &str) -> Vec<&str> {
    content
        .lines()
        .filter(|line| {
            line.split(':')
                .nth(1)
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .collect()
}

#[tokio::test]
async fn matches_are_path_line_text_sorted_by_path_then_line() {
    let fx = Fixture::new();
    fx.write("src/b.rs", "fn beta() {}\nlet x = 1;\nfn gamma() {}\n");
    fx.write("src/a.rs", "fn alpha() {}\n");
    fx.write("README.md", "no functions here\n");
    let content = fx.ok(json!({"pattern": r"fn \w+"})).await;
    assert_eq!(
        match_lines(&content),
        [
            "src/a.rs:1:fn alpha() {}",
            "src/b.rs:1:fn beta() {}",
            "src/b.rs:3:fn gamma() {}",
        ]
    );
    assert!(content.ends_with("3 matches in 2 files"), "{content}");
}

#[tokio::test]
async fn gitignored_files_are_not_searched_even_outside_a_git_repository() {
    let fx = Fixture::new();
    fx.write(".gitignore", "target/\n*.log\n");
    fx.write("target/debug/out.rs", "needle\n");
    fx.write("build.log", "needle\n");
    fx.write("src/main.rs", "needle\n");
    let content = fx.ok(json!({"pattern": "needle"})).await;
    assert_eq!(match_lines(&content), ["src/main.rs:1:needle"]);
}

#[tokio::test]
async fn gitignore_of_the_workspace_root_applies_when_searching_a_subdirectory() {
    let fx = Fixture::new();
    fx.write(".gitignore", "*.gen.rs\n");
    fx.write("src/model.gen.rs", "needle\n");
    fx.write("src/model.rs", "needle\n");
    let content = fx.ok(json!({"pattern": "needle", "path": "src"})).await;
    assert_eq!(match_lines(&content), ["src/model.rs:1:needle"]);
}

#[tokio::test]
async fn dot_ignore_files_are_honoured() {
    let fx = Fixture::new();
    fx.write(".ignore", "vendor/\n");
    fx.write("vendor/lib.rs", "needle\n");
    fx.write("lib.rs", "needle\n");
    let content = fx.ok(json!({"pattern": "needle"})).await;
    assert_eq!(match_lines(&content), ["lib.rs:1:needle"]);
}

#[tokio::test]
async fn hidden_files_and_the_git_directory_are_not_searched() {
    let fx = Fixture::new();
    fx.write(".env", "needle\n");
    fx.write(".git/config", "needle\n");
    fx.write("sub/.git/HEAD", "needle\n");
    fx.write("visible.txt", "needle\n");
    let content = fx.ok(json!({"pattern": "needle"})).await;
    assert_eq!(match_lines(&content), ["visible.txt:1:needle"]);
}

#[tokio::test]
async fn a_path_inside_git_is_rejected() {
    let fx = Fixture::new();
    fx.write(".git/config", "needle\n");
    let err = fx
        .call(json!({"pattern": "needle", "path": ".git"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToolError::Jail(JailError::GitDir { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn glob_keeps_only_matching_files() {
    let fx = Fixture::new();
    fx.write("src/lib.rs", "needle\n");
    fx.write("src/notes.md", "needle\n");
    let content = fx.ok(json!({"pattern": "needle", "glob": "*.rs"})).await;
    assert_eq!(match_lines(&content), ["src/lib.rs:1:needle"]);
}

#[tokio::test]
async fn glob_list_accepts_commas_spaces_braces_and_exclusions() {
    let fx = Fixture::new();
    fx.write("src/lib.rs", "needle\n");
    fx.write("src/gen/out.rs", "needle\n");
    fx.write("Cargo.toml", "needle\n");
    fx.write("notes.md", "needle\n");
    let content = fx
        .ok(json!({"pattern": "needle", "glob": "*.{rs,toml}, !src/gen/**"}))
        .await;
    assert_eq!(
        match_lines(&content),
        ["Cargo.toml:1:needle", "src/lib.rs:1:needle"]
    );
    let content = fx
        .ok(json!({"pattern": "needle", "glob": "*.md *.toml"}))
        .await;
    assert_eq!(
        match_lines(&content),
        ["Cargo.toml:1:needle", "notes.md:1:needle"]
    );
}

#[tokio::test]
async fn invalid_glob_is_invalid_arguments() {
    let fx = Fixture::new();
    let err = fx
        .call(json!({"pattern": "x", "glob": "src/[a"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToolError::InvalidArguments { message, .. } if message.contains("src/[a")),
        "{err}"
    );
}

#[tokio::test]
async fn matching_is_case_sensitive_unless_asked() {
    let fx = Fixture::new();
    fx.write("a.txt", "Needle\nneedle\nNEEDLE\n");
    let content = fx.ok(json!({"pattern": "needle"})).await;
    assert_eq!(match_lines(&content), ["a.txt:2:needle"]);
    let content = fx
        .ok(json!({"pattern": "needle", "case_insensitive": true}))
        .await;
    assert_eq!(match_lines(&content).len(), 3);
}

#[tokio::test]
async fn results_beyond_max_results_are_cut_and_the_summary_says_capped() {
    let fx = Fixture::new();
    let body: String = (0..50).map(|i| format!("hit {i}\n")).collect();
    fx.write("many.txt", &body);
    let content = fx.ok(json!({"pattern": "hit", "max_results": 5})).await;
    assert_eq!(match_lines(&content).len(), 5);
    assert_eq!(match_lines(&content)[0], "many.txt:1:hit 0");
    assert!(content.contains("capped at 5"), "{content}");
}

#[tokio::test]
async fn exactly_max_results_matches_are_not_reported_as_capped() {
    let fx = Fixture::new();
    fx.write("a.txt", "hit\nhit\n");
    fx.write("b.txt", "hit\n");
    let output = fx
        .call(json!({"pattern": "hit", "max_results": 3}))
        .await
        .unwrap();
    assert_eq!(match_lines(&output.content).len(), 3);
    assert!(!output.content.contains("capped"), "{}", output.content);
    assert_eq!(output.details["capped"], false);
}

#[tokio::test]
async fn capped_search_over_many_files_stops_with_at_most_max_results() {
    let fx = Fixture::new();
    for i in 0..40 {
        fx.write(&format!("dir{}/f{i}.txt", i % 4), "hit\nhit\n");
    }
    let output = fx
        .call(json!({"pattern": "hit", "max_results": 7}))
        .await
        .unwrap();
    assert_eq!(match_lines(&output.content).len(), 7);
    assert_eq!(output.details["capped"], true);
}

#[tokio::test]
async fn max_results_is_clamped_to_the_configured_cap() {
    let mut config = ToolsConfig::default();
    config.search.max_results_cap = 4;
    let fx = Fixture::with_config(config);
    fx.write("a.txt", "hit\n".repeat(10));
    let content = fx.ok(json!({"pattern": "hit", "max_results": 1000})).await;
    assert_eq!(match_lines(&content).len(), 4);
    assert!(content.contains("capped at 4"), "{content}");
}

#[tokio::test]
async fn default_max_results_applies_when_none_is_given() {
    let mut config = ToolsConfig::default();
    config.search.default_max_results = 2;
    let fx = Fixture::with_config(config);
    fx.write("a.txt", "hit\n".repeat(10));
    let content = fx.ok(json!({"pattern": "hit"})).await;
    assert_eq!(match_lines(&content).len(), 2);
}

#[tokio::test]
async fn a_single_file_path_is_searched_alone() {
    let fx = Fixture::new();
    fx.write("src/a.rs", "needle\n");
    fx.write("src/b.rs", "x\nneedle\n");
    let content = fx
        .ok(json!({"pattern": "needle", "path": "src/b.rs"}))
        .await;
    assert_eq!(match_lines(&content), ["src/b.rs:2:needle"]);
}

#[tokio::test]
async fn binary_files_are_skipped_in_a_walk() {
    let fx = Fixture::new();
    fx.write("blob.bin", b"needle\n\0\0\x01needle\n");
    fx.write("text.txt", "needle\n");
    let content = fx.ok(json!({"pattern": "needle"})).await;
    assert_eq!(match_lines(&content), ["text.txt:1:needle"]);
}

#[tokio::test]
async fn a_binary_file_named_as_path_is_reported_as_binary() {
    let fx = Fixture::new();
    fx.write("blob.bin", b"needle\0needle\n");
    let content = fx
        .ok(json!({"pattern": "needle", "path": "blob.bin"}))
        .await;
    assert!(match_lines(&content).is_empty(), "{content}");
    assert!(content.contains("binary"), "{content}");
}

#[tokio::test]
async fn long_lines_are_cut_with_a_marker() {
    let mut config = ToolsConfig::default();
    config.search.max_line_chars = 10;
    let fx = Fixture::with_config(config);
    fx.write("long.txt", format!("needle{}\n", "é".repeat(20)));
    let content = fx.ok(json!({"pattern": "needle"})).await;
    assert_eq!(
        match_lines(&content),
        ["long.txt:1:needleéééé [... 16 more characters]"]
    );
}

#[tokio::test]
async fn windows_line_endings_are_not_shown() {
    let fx = Fixture::new();
    fx.write("crlf.txt", "needle one\r\nneedle two\r\n");
    let content = fx.ok(json!({"pattern": "needle"})).await;
    assert_eq!(
        match_lines(&content),
        ["crlf.txt:1:needle one", "crlf.txt:2:needle two"]
    );
}

#[tokio::test]
async fn no_match_is_a_success_that_says_so() {
    let fx = Fixture::new();
    fx.write("a.txt", "hay\n");
    let output = fx.call(json!({"pattern": "needle"})).await.unwrap();
    assert!(output.success);
    assert!(
        output.content.starts_with("no matches"),
        "{}",
        output.content
    );
    assert_eq!(output.details["matches"], 0);
}

#[tokio::test]
async fn invalid_regex_is_invalid_arguments_with_the_regex_error() {
    let fx = Fixture::new();
    let err = fx
        .call(json!({"pattern": "fn (unclosed"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToolError::InvalidArguments { message, .. }
            if message.contains("not a valid regular expression") && message.contains("unclosed")),
        "{err}"
    );
}

#[tokio::test]
async fn empty_pattern_is_invalid_arguments() {
    let fx = Fixture::new();
    let err = fx.call(json!({"pattern": ""})).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err}");
}

#[tokio::test]
async fn wrong_argument_shapes_are_invalid_arguments() {
    let fx = Fixture::new();
    for args in [
        json!({}),
        json!({"pattern": 42}),
        json!({"pattern": "x", "max_results": -1}),
        json!({"pattern": "x", "case_insensitive": "yes"}),
        json!({"pattern": "x", "unknown": true}),
    ] {
        let err = fx.call(args.clone()).await.unwrap_err();
        assert!(
            matches!(err, ToolError::InvalidArguments { .. }),
            "{args}: {err}"
        );
    }
}

#[tokio::test]
async fn a_missing_path_is_an_io_error_naming_it() {
    let fx = Fixture::new();
    let err = fx
        .call(json!({"pattern": "x", "path": "nope"}))
        .await
        .unwrap_err();
    assert!(matches!(&err, ToolError::Io { .. }), "{err}");
    assert!(err.to_string().contains("`nope`"), "{err}");
}

#[tokio::test]
async fn paths_escaping_the_workspace_are_refused() {
    let fx = Fixture::new();
    fs::write(fx.outside.path().join("secret.txt"), "needle\n").unwrap();
    let outside = fx.outside.path().to_str().unwrap().to_string();
    for path in ["..", "../..", "src/../../x", outside.as_str(), "/etc"] {
        let err = fx
            .call(json!({"pattern": "needle", "path": path}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ToolError::Jail(JailError::Escapes { .. })),
            "{path}: {err}"
        );
    }
}

#[tokio::test]
async fn symlinked_directory_or_file_leading_outside_is_refused_as_path() {
    let fx = Fixture::new();
    fs::write(fx.outside.path().join("secret.txt"), "needle\n").unwrap();
    symlink(fx.outside.path(), fx.root().join("out_dir")).unwrap();
    symlink(
        fx.outside.path().join("secret.txt"),
        fx.root().join("out_file"),
    )
    .unwrap();
    for path in ["out_dir", "out_dir/secret.txt", "out_file"] {
        let err = fx
            .call(json!({"pattern": "needle", "path": path}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ToolError::Jail(JailError::SymlinkEscapes { .. })),
            "{path}: {err}"
        );
    }
}

#[tokio::test]
async fn symlinks_met_during_a_walk_are_not_followed() {
    let fx = Fixture::new();
    fs::write(fx.outside.path().join("secret.txt"), "needle secret\n").unwrap();
    symlink(
        fx.outside.path().join("secret.txt"),
        fx.root().join("leak.txt"),
    )
    .unwrap();
    symlink(fx.outside.path(), fx.root().join("leak_dir")).unwrap();
    fx.write("inside.txt", "needle inside\n");
    symlink(fx.root().join("inside.txt"), fx.root().join("alias.txt")).unwrap();
    let content = fx.ok(json!({"pattern": "needle"})).await;
    assert_eq!(match_lines(&content), ["inside.txt:1:needle inside"]);
    assert!(!content.contains("secret"), "{content}");
}

#[tokio::test]
async fn absolute_path_inside_the_workspace_is_accepted() {
    let fx = Fixture::new();
    fx.write("src/a.rs", "needle\n");
    let absolute = fx.ctx.jail.root().join("src");
    let content = fx
        .ok(json!({"pattern": "needle", "path": absolute.to_str().unwrap()}))
        .await;
    assert_eq!(match_lines(&content), ["src/a.rs:1:needle"]);
}

#[test]
fn the_tool_only_reads_and_requires_a_pattern() {
    assert!(!SearchCodeTool.mutates());
    let schema = SearchCodeTool.parameters();
    assert_eq!(schema["required"], json!(["pattern"]));
    for field in ["pattern", "path", "glob", "case_insensitive", "max_results"] {
        assert!(schema["properties"].get(field).is_some(), "{field}");
    }
}

#[test]
fn glob_lists_split_outside_braces_only() {
    let items: Vec<&str> = split_globs("*.{rs,toml}, !target/**  src/*.md,").collect();
    assert_eq!(items, ["*.{rs,toml}", "!target/**", "src/*.md"]);
}
