#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `edit_file_content` when it works: exact replacement, creation, line endings, permissions.

mod file_tools_support;

use std::os::unix::fs::{PermissionsExt, symlink};

use file_tools_support::workspace;
use serde_json::json;
use tools::Tool;
use tools::edit_file::EditFileTool;

const RUST: &str = "fn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n";

#[test]
fn tool_mutates_and_requires_its_three_texts() {
    assert!(EditFileTool.mutates());
    assert_eq!(EditFileTool.name(), "edit_file_content");
    let schema = EditFileTool.parameters();
    let mut required: Vec<String> = serde_json::from_value(schema["required"].clone()).unwrap();
    required.sort();
    assert_eq!(required, ["file_path", "new_text", "old_text"]);
}

#[tokio::test]
async fn unique_match_is_replaced_and_the_result_shown() {
    let ws = workspace();
    ws.write("src/main.rs", RUST);
    let out = ws
        .edit(json!({
            "file_path": "src/main.rs",
            "old_text": "    let x = 1;\n",
            "new_text": "    let x = 2;\n    let y = 3;\n",
        }))
        .await
        .unwrap();
    assert!(out.success);
    assert_eq!(
        ws.contents("src/main.rs"),
        "fn main() {\n    let x = 2;\n    let y = 3;\n    println!(\"{x}\");\n}\n"
    );
    assert!(
        out.content
            .starts_with("Edited `src/main.rs`: 1 replacement at line 2.\n"),
        "{}",
        out.content
    );
    assert!(out.content.contains("1\tfn main() {\n"), "{}", out.content);
    assert!(
        out.content.contains("3\t    let y = 3;\n"),
        "{}",
        out.content
    );
    assert!(out.content.contains("5\t}\n"), "{}", out.content);
    assert_eq!(out.details["replacements"], 1);
    assert_eq!(out.details["lines"], json!([2]));
}

#[tokio::test]
async fn replace_all_replaces_every_match() {
    let ws = workspace();
    ws.write("f.txt", "a\nTODO\nb\nTODO\nc\nTODO\n");
    let out = ws
        .edit(json!({
            "file_path": "f.txt", "old_text": "TODO", "new_text": "DONE", "replace_all": true
        }))
        .await
        .unwrap();
    assert_eq!(ws.contents("f.txt"), "a\nDONE\nb\nDONE\nc\nDONE\n");
    assert!(
        out.content.contains("3 replacements at lines 2, 4, 6"),
        "{}",
        out.content
    );
    assert_eq!(out.details["lines"], json!([2, 4, 6]));
}

#[tokio::test]
async fn replace_all_with_a_single_match_is_fine() {
    let ws = workspace();
    ws.write("f.txt", "one two\n");
    ws.edit(json!({
        "file_path": "f.txt", "old_text": "two", "new_text": "three", "replace_all": true
    }))
    .await
    .unwrap();
    assert_eq!(ws.contents("f.txt"), "one three\n");
}

#[tokio::test]
async fn deleting_text_works() {
    let ws = workspace();
    ws.write("src/main.rs", RUST);
    ws.edit(json!({"file_path": "src/main.rs", "old_text": "    let x = 1;\n", "new_text": ""}))
        .await
        .unwrap();
    assert_eq!(
        ws.contents("src/main.rs"),
        "fn main() {\n    println!(\"{x}\");\n}\n"
    );
}

#[tokio::test]
async fn crlf_file_stays_crlf_when_texts_use_lf() {
    let ws = workspace();
    ws.write("win.txt", "one\r\ntwo\r\nthree\r\n");
    ws.edit(json!({
        "file_path": "win.txt", "old_text": "one\ntwo\n", "new_text": "uno\ndos\nextra\n"
    }))
    .await
    .unwrap();
    assert_eq!(ws.contents("win.txt"), "uno\r\ndos\r\nextra\r\nthree\r\n");
}

#[tokio::test]
async fn crlf_texts_on_a_crlf_file_are_not_doubled() {
    let ws = workspace();
    ws.write("win.txt", "one\r\ntwo\r\n");
    ws.edit(json!({
        "file_path": "win.txt", "old_text": "one\r\ntwo", "new_text": "1\r\n2"
    }))
    .await
    .unwrap();
    assert_eq!(ws.contents("win.txt"), "1\r\n2\r\n");
}

#[tokio::test]
async fn missing_final_newline_is_kept() {
    let ws = workspace();
    ws.write("f.txt", "first\nlast");
    ws.edit(json!({"file_path": "f.txt", "old_text": "last", "new_text": "final"}))
        .await
        .unwrap();
    assert_eq!(ws.contents("f.txt"), "first\nfinal");
}

#[tokio::test]
async fn old_text_with_a_line_break_matches_a_last_line_without_one() {
    let ws = workspace();
    ws.write("f.txt", "first\nlast");
    ws.edit(json!({"file_path": "f.txt", "old_text": "last\n", "new_text": "final\n"}))
        .await
        .unwrap();
    assert_eq!(ws.contents("f.txt"), "first\nfinal");
}

#[tokio::test]
async fn permissions_are_kept_after_an_edit() {
    let ws = workspace();
    ws.write("run.sh", "#!/bin/sh\necho old\n");
    std::fs::set_permissions(ws.path("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    ws.edit(json!({"file_path": "run.sh", "old_text": "old", "new_text": "new"}))
        .await
        .unwrap();
    assert_eq!(ws.contents("run.sh"), "#!/bin/sh\necho new\n");
    let mode = std::fs::metadata(ws.path("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o750);
    let leftovers = std::fs::read_dir(ws.root.path()).unwrap().count();
    assert_eq!(leftovers, 1, "a temporary file was left behind");
}

#[tokio::test]
async fn empty_old_text_creates_a_missing_file_and_its_directories() {
    let ws = workspace();
    let out = ws
        .edit(json!({
            "file_path": "new/deep/mod.rs", "old_text": "", "new_text": "pub fn f() {}\n"
        }))
        .await
        .unwrap();
    assert_eq!(ws.contents("new/deep/mod.rs"), "pub fn f() {}\n");
    assert!(
        out.content
            .starts_with("Created `new/deep/mod.rs` (1 line)."),
        "{}",
        out.content
    );
    assert!(out.content.contains("1\tpub fn f() {}\n"));
    assert_eq!(out.details["created"], true);
}

#[tokio::test]
async fn empty_old_text_fills_an_existing_empty_file() {
    let ws = workspace();
    ws.write("empty.txt", "");
    ws.edit(json!({"file_path": "empty.txt", "old_text": "", "new_text": "now full\n"}))
        .await
        .unwrap();
    assert_eq!(ws.contents("empty.txt"), "now full\n");
}

#[tokio::test]
async fn symlink_inside_the_workspace_edits_its_target_and_stays_a_link() {
    let ws = workspace();
    ws.write("real.txt", "old\n");
    symlink(ws.path("real.txt"), ws.path("alias.txt")).unwrap();
    ws.edit(json!({"file_path": "alias.txt", "old_text": "old", "new_text": "new"}))
        .await
        .unwrap();
    assert_eq!(ws.contents("real.txt"), "new\n");
    let meta = std::fs::symlink_metadata(ws.path("alias.txt")).unwrap();
    assert!(meta.file_type().is_symlink());
}

#[tokio::test]
async fn large_new_text_snippet_is_cut_and_says_where_it_ends() {
    let ws = workspace();
    ws.write("f.txt", "start\nMARK\nend\n");
    let body: String = (1..=50).map(|n| format!("row {n}\n")).collect();
    let out = ws
        .edit(json!({"file_path": "f.txt", "old_text": "MARK\n", "new_text": body}))
        .await
        .unwrap();
    assert!(out.content.contains("2\trow 1\n"), "{}", out.content);
    assert!(!out.content.contains("row 50"), "{}", out.content);
    assert!(
        out.content.contains("the new text goes on to line 51"),
        "{}",
        out.content
    );
}
