#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `edit_file_content` when it must not edit: no match or several, bad inputs, binary and
//! oversized files, and every way out of the workspace. The file is left as it was.

mod file_tools_support;

use std::os::unix::fs::symlink;

use file_tools_support::{invalid, rejected, workspace, workspace_with};
use serde_json::json;
use tools::{ToolError, ToolsConfig};

const RUST: &str = "fn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n";

#[tokio::test]
async fn several_matches_are_refused_with_their_lines() {
    let ws = workspace();
    ws.write("f.txt", "a\nTODO\nb\nTODO\nc\nTODO\n");
    let message = rejected(
        ws.edit(json!({"file_path": "f.txt", "old_text": "TODO", "new_text": "DONE"}))
            .await,
    );
    assert!(message.contains("matches 3 times"), "{message}");
    assert!(message.contains("at lines 2, 4, 6"), "{message}");
    assert!(message.contains("replace_all"), "{message}");
    assert!(message.contains("surrounding lines"), "{message}");
    assert_eq!(ws.contents("f.txt"), "a\nTODO\nb\nTODO\nc\nTODO\n");
}

#[tokio::test]
async fn no_match_hint_points_at_a_whitespace_insensitive_match() {
    let ws = workspace();
    ws.write("src/main.rs", RUST);
    let message = rejected(
        ws.edit(json!({
            "file_path": "src/main.rs",
            "old_text": "let x = 1;\nprintln!(\"{x}\");",
            "new_text": "let x = 2;",
        }))
        .await,
    );
    assert!(
        message.contains("old_text was not found in `src/main.rs`"),
        "{message}"
    );
    assert!(
        message.contains("A match ignoring whitespace exists at line 2"),
        "{message}"
    );
    assert!(message.contains("2\t    let x = 1;\n"), "{message}");
    assert!(message.contains("3\t    println!(\"{x}\");\n"), "{message}");
    assert_eq!(ws.contents("src/main.rs"), RUST);
}

#[tokio::test]
async fn no_match_hint_shows_the_most_similar_lines() {
    let ws = workspace();
    ws.write(
        "lib.rs",
        "use std::io;\n\nimpl Cart {\n    fn compute_total(items: &[u32]) -> u32 {\n        items.iter().sum()\n    }\n}\n",
    );
    let message = rejected(
        ws.edit(json!({
            "file_path": "lib.rs",
            "old_text": "fn compute_totals(items: &[u64]) -> u64 {\n        items.iter().sum()\n}",
            "new_text": "fn x() {}",
        }))
        .await,
    );
    assert!(message.contains("not found"), "{message}");
    assert!(message.contains("most similar"), "{message}");
    assert!(
        message.contains("4\t    fn compute_total(items: &[u32]) -> u32 {\n"),
        "{message}"
    );
    assert!(!message.contains("use std::io"), "{message}");
}

#[tokio::test]
async fn no_match_hint_notices_copied_line_numbers() {
    let ws = workspace();
    ws.write("src/main.rs", RUST);
    let message = rejected(
        ws.edit(json!({
            "file_path": "src/main.rs",
            "old_text": "     2\t    let x = 1;",
            "new_text": "    let x = 2;",
        }))
        .await,
    );
    assert!(message.contains("line numbers"), "{message}");
}

#[tokio::test]
async fn no_match_without_anything_similar_says_so() {
    let ws = workspace();
    ws.write("src/main.rs", RUST);
    let message = rejected(
        ws.edit(json!({
            "file_path": "src/main.rs", "old_text": "completely unrelated", "new_text": "x"
        }))
        .await,
    );
    assert!(message.contains("No line resembles"), "{message}");
}

#[tokio::test]
async fn empty_old_text_on_a_non_empty_file_is_refused() {
    let ws = workspace();
    ws.write("src/main.rs", RUST);
    let message = rejected(
        ws.edit(json!({"file_path": "src/main.rs", "old_text": "", "new_text": "x"}))
            .await,
    );
    assert!(
        message.contains("already exists and is not empty"),
        "{message}"
    );
    assert_eq!(ws.contents("src/main.rs"), RUST);
}

#[tokio::test]
async fn non_empty_old_text_on_a_missing_file_explains_how_to_create() {
    let ws = workspace();
    let message = rejected(
        ws.edit(json!({"file_path": "nope.rs", "old_text": "a", "new_text": "b"}))
            .await,
    );
    assert!(message.contains("`nope.rs` does not exist"), "{message}");
    assert!(message.contains("empty old_text"), "{message}");
    assert!(!ws.path("nope.rs").exists());
}

#[tokio::test]
async fn identical_old_and_new_text_is_invalid() {
    let ws = workspace();
    ws.write("f.txt", "same\n");
    let message = invalid(
        ws.edit(json!({"file_path": "f.txt", "old_text": "same", "new_text": "same"}))
            .await,
    );
    assert!(message.contains("identical"), "{message}");
}

#[tokio::test]
async fn directory_is_refused() {
    let ws = workspace();
    ws.write("src/main.rs", RUST);
    let message = rejected(
        ws.edit(json!({"file_path": "src", "old_text": "a", "new_text": "b"}))
            .await,
    );
    assert!(message.contains("is a directory"), "{message}");
}

#[tokio::test]
async fn binary_file_is_refused_and_left_alone() {
    let ws = workspace();
    let bytes = b"PK\x03\x04\0\0binary TODO".to_vec();
    ws.write("a.zip", &bytes);
    let message = rejected(
        ws.edit(json!({"file_path": "a.zip", "old_text": "TODO", "new_text": "DONE"}))
            .await,
    );
    assert!(message.contains("binary"), "{message}");
    assert!(message.contains("17 bytes"), "{message}");
    assert_eq!(std::fs::read(ws.path("a.zip")).unwrap(), bytes);
}

#[tokio::test]
async fn file_over_the_size_limit_is_refused() {
    let mut config = ToolsConfig::default();
    config.files.edit_max_file_bytes = 10;
    let ws = workspace_with(config);
    ws.write("big.txt", "0123456789 TODO\n");
    let message = rejected(
        ws.edit(json!({"file_path": "big.txt", "old_text": "TODO", "new_text": "DONE"}))
            .await,
    );
    assert!(message.contains("edit_max_file_bytes"), "{message}");
    assert_eq!(ws.contents("big.txt"), "0123456789 TODO\n");
}

#[tokio::test]
async fn wrong_argument_shapes_are_invalid() {
    let ws = workspace();
    ws.write("f.txt", "a\n");
    for args in [
        json!({}),
        json!({"file_path": "f.txt", "old_text": "a"}),
        json!({"file_path": "f.txt", "old_text": 1, "new_text": "b"}),
        json!({"file_path": "f.txt", "old_text": "a", "new_text": "b", "replace_all": "yes"}),
        json!({"file_path": "f.txt", "old_text": "a", "new_text": "b", "force": true}),
    ] {
        invalid(ws.edit(args).await);
    }
    assert_eq!(ws.contents("f.txt"), "a\n");
}

#[tokio::test]
async fn dot_dot_escape_is_refused_and_nothing_is_written() {
    let ws = workspace();
    let name = ws.outside.path().file_name().unwrap().to_str().unwrap();
    for path in [
        format!("../{name}/secret.txt"),
        format!("../{name}/created.txt"),
    ] {
        for old_text in ["top", ""] {
            let err = ws
                .edit(json!({"file_path": path, "old_text": old_text, "new_text": "pwned"}))
                .await
                .unwrap_err();
            assert!(matches!(err, ToolError::Jail(_)), "{err}");
        }
    }
    ws.outside_untouched();
}

#[tokio::test]
async fn absolute_path_outside_is_refused_and_nothing_is_written() {
    let ws = workspace();
    for name in ["secret.txt", "created.txt"] {
        let path = ws.outside.path().join(name);
        for old_text in ["top", ""] {
            let err = ws
                .edit(json!({
                    "file_path": path.to_str().unwrap(), "old_text": old_text, "new_text": "pwned"
                }))
                .await
                .unwrap_err();
            assert!(matches!(err, ToolError::Jail(_)), "{err}");
        }
    }
    ws.outside_untouched();
}

#[tokio::test]
async fn symlinked_file_outside_is_refused_and_unchanged() {
    let ws = workspace();
    symlink(ws.outside.path().join("secret.txt"), ws.path("link.txt")).unwrap();
    let err = ws
        .edit(json!({"file_path": "link.txt", "old_text": "top", "new_text": "pwned"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Jail(_)), "{err}");
    ws.outside_untouched();
}

#[tokio::test]
async fn dangling_symlink_to_outside_does_not_create_the_target() {
    let ws = workspace();
    symlink(ws.outside.path().join("created.txt"), ws.path("link.txt")).unwrap();
    let err = ws
        .edit(json!({"file_path": "link.txt", "old_text": "", "new_text": "pwned"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Jail(_)), "{err}");
    ws.outside_untouched();
}

#[tokio::test]
async fn symlinked_directory_outside_is_refused_and_nothing_is_created() {
    let ws = workspace();
    symlink(ws.outside.path(), ws.path("out")).unwrap();
    for (path, old_text) in [
        ("out/secret.txt", "top"),
        ("out/created.txt", ""),
        ("out/sub/created.txt", ""),
    ] {
        let err = ws
            .edit(json!({"file_path": path, "old_text": old_text, "new_text": "pwned"}))
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::Jail(_)), "{path}: {err}");
    }
    ws.outside_untouched();
}
