#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `read_file_content`: ranges, caps, refusals and the workspace jail.

mod file_tools_support;

use std::os::unix::fs::symlink;

use file_tools_support::{invalid, rejected, workspace, workspace_with};
use serde_json::json;
use tools::read_file::ReadFileTool;
use tools::{Tool, ToolError, ToolsConfig};

fn numbered(lines: usize) -> String {
    (1..=lines).map(|n| format!("line {n}\n")).collect()
}

#[test]
fn tool_only_reads() {
    assert!(!ReadFileTool.mutates());
    assert_eq!(ReadFileTool.name(), "read_file_content");
    let schema = ReadFileTool.parameters();
    assert_eq!(schema["required"], json!(["file_path"]));
}

#[tokio::test]
async fn whole_small_file_is_shown_with_line_numbers() {
    let ws = workspace();
    ws.write("src/lib.rs", "fn main() {\n    run();\n}\n");
    let out = ws.read(json!({"file_path": "src/lib.rs"})).await.unwrap();
    assert!(out.success);
    assert!(
        out.content.starts_with("`src/lib.rs` (3 lines):\n"),
        "{}",
        out.content
    );
    assert!(out.content.contains("1\tfn main() {\n"));
    assert!(out.content.contains("2\t    run();\n"));
    assert!(out.content.contains("3\t}\n"));
    assert_eq!(out.details["total_lines"], 3);
    assert_eq!(out.details["truncated"], false);
}

#[tokio::test]
async fn range_shows_only_those_lines_and_the_total() {
    let ws = workspace();
    ws.write("f.txt", numbered(50));
    let out = ws
        .read(json!({"file_path": "f.txt", "start_line": 10, "end_line": 12}))
        .await
        .unwrap();
    assert!(
        out.content.starts_with("`f.txt` lines 10-12 of 50:\n"),
        "{}",
        out.content
    );
    assert!(out.content.contains("10\tline 10\n"));
    assert!(out.content.contains("12\tline 12\n"));
    assert!(!out.content.contains("line 9\n"));
    assert!(!out.content.contains("line 13"));
    assert!(
        !out.content.contains("call again"),
        "a complete range needs no hint"
    );
}

#[tokio::test]
async fn end_line_past_the_end_is_clamped() {
    let ws = workspace();
    ws.write("f.txt", numbered(5));
    let out = ws
        .read(json!({"file_path": "f.txt", "start_line": 4, "end_line": 100}))
        .await
        .unwrap();
    assert!(
        out.content.starts_with("`f.txt` lines 4-5 of 5:\n"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn last_line_without_line_break_is_counted_and_shown() {
    let ws = workspace();
    ws.write("f.txt", "a\nb");
    let out = ws.read(json!({"file_path": "f.txt"})).await.unwrap();
    assert!(out.content.contains("(2 lines)"), "{}", out.content);
    assert!(out.content.contains("2\tb\n"));
}

#[tokio::test]
async fn crlf_file_is_shown_without_carriage_returns_and_says_so() {
    let ws = workspace();
    ws.write("win.txt", "one\r\ntwo\r\n");
    let out = ws.read(json!({"file_path": "win.txt"})).await.unwrap();
    assert!(out.content.contains("CRLF line endings"), "{}", out.content);
    assert!(out.content.contains("1\tone\n"));
    assert!(!out.content.contains('\r'));
}

#[tokio::test]
async fn line_cap_cuts_the_read_and_says_where_to_go_on() {
    let mut config = ToolsConfig::default();
    config.files.read_max_lines = 10;
    let ws = workspace_with(config);
    ws.write("big.txt", numbered(100));
    let out = ws.read(json!({"file_path": "big.txt"})).await.unwrap();
    assert!(
        out.content.contains("showing lines 1-10 of 100"),
        "{}",
        out.content
    );
    assert!(out.content.contains("call again with start_line=11"));
    assert!(out.content.contains("10\tline 10\n"));
    assert!(!out.content.contains("line 11\n"));
    assert_eq!(out.details["truncated"], true);

    let next = ws
        .read(json!({"file_path": "big.txt", "start_line": 91}))
        .await
        .unwrap();
    assert!(
        next.content.starts_with("`big.txt` lines 91-100 of 100:"),
        "{}",
        next.content
    );
    assert!(!next.content.contains("call again"));
}

#[tokio::test]
async fn byte_cap_cuts_before_the_line_that_does_not_fit() {
    let mut config = ToolsConfig::default();
    config.files.read_max_bytes = 30;
    let ws = workspace_with(config);
    ws.write("f.txt", "0123456789\n0123456789\n0123456789\n0123456789\n");
    let out = ws.read(json!({"file_path": "f.txt"})).await.unwrap();
    assert!(
        out.content.contains("showing lines 1-2 of 4"),
        "{}",
        out.content
    );
    assert!(out.content.contains("start_line=3"));
}

#[tokio::test]
async fn single_line_over_the_byte_cap_is_shown_in_part() {
    let mut config = ToolsConfig::default();
    config.files.read_max_bytes = 16;
    let ws = workspace_with(config);
    ws.write("min.js", format!("{}\nnext\n", "x".repeat(1000)));
    let out = ws.read(json!({"file_path": "min.js"})).await.unwrap();
    assert!(
        out.content.contains(&format!("1\t{}\n", "x".repeat(16))),
        "{}",
        out.content
    );
    assert!(out.content.contains("line 1 is 1000 bytes long"));
    assert!(out.content.contains("start_line=2"));
    assert!(!out.content.contains("next"));
}

#[tokio::test]
async fn empty_file_is_reported_empty() {
    let ws = workspace();
    ws.write("empty.txt", "");
    let out = ws.read(json!({"file_path": "empty.txt"})).await.unwrap();
    assert!(out.success);
    assert!(
        out.content.contains("is empty (0 lines)"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn start_line_beyond_the_end_says_how_long_the_file_is() {
    let ws = workspace();
    ws.write("f.txt", numbered(7));
    let message = rejected(
        ws.read(json!({"file_path": "f.txt", "start_line": 8}))
            .await,
    );
    assert!(
        message.contains("start_line 8 is beyond the end"),
        "{message}"
    );
    assert!(message.contains("has 7 lines"), "{message}");
}

#[tokio::test]
async fn start_after_end_is_invalid() {
    let ws = workspace();
    ws.write("f.txt", numbered(7));
    let message = invalid(
        ws.read(json!({"file_path": "f.txt", "start_line": 5, "end_line": 2}))
            .await,
    );
    assert!(
        message.contains("start_line (5) is after end_line (2)"),
        "{message}"
    );
}

#[tokio::test]
async fn line_zero_is_invalid() {
    let ws = workspace();
    ws.write("f.txt", numbered(7));
    for args in [
        json!({"file_path": "f.txt", "start_line": 0}),
        json!({"file_path": "f.txt", "end_line": 0}),
    ] {
        let message = invalid(ws.read(args).await);
        assert!(message.contains("start at 1"), "{message}");
    }
}

#[tokio::test]
async fn wrong_argument_shapes_are_invalid() {
    let ws = workspace();
    ws.write("f.txt", numbered(3));
    for args in [
        json!({}),
        json!({"file_path": 7}),
        json!({"file_path": "f.txt", "start_line": -1}),
        json!({"file_path": "f.txt", "start_line": "2"}),
        json!({"file_path": "f.txt", "lines": 3}),
        json!("not json"),
    ] {
        invalid(ws.read(args).await);
    }
}

#[tokio::test]
async fn missing_file_is_rejected_with_a_pointer_to_list_directory() {
    let ws = workspace();
    let message = rejected(ws.read(json!({"file_path": "nope.rs"})).await);
    assert!(message.contains("`nope.rs` does not exist"), "{message}");
    assert!(message.contains("list_directory"));
}

#[tokio::test]
async fn directory_is_rejected() {
    let ws = workspace();
    ws.write("src/lib.rs", "x");
    let message = rejected(ws.read(json!({"file_path": "src"})).await);
    assert!(message.contains("is a directory"), "{message}");
}

#[tokio::test]
async fn binary_file_is_refused_with_its_size() {
    let ws = workspace();
    let mut bytes = b"\x7fELF".to_vec();
    bytes.extend([0u8; 2044]);
    ws.write("app.bin", &bytes);
    let message = rejected(ws.read(json!({"file_path": "app.bin"})).await);
    assert!(message.contains("binary"), "{message}");
    assert!(message.contains("2.0 KiB"), "{message}");
}

#[tokio::test]
async fn non_utf8_text_is_refused() {
    let ws = workspace();
    ws.write("latin1.txt", b"caf\xe9\n");
    let message = rejected(ws.read(json!({"file_path": "latin1.txt"})).await);
    assert!(message.contains("not UTF-8"), "{message}");
}

#[tokio::test]
async fn invalid_utf8_after_the_sniffed_start_is_refused() {
    let ws = workspace();
    let mut bytes = numbered(2000).into_bytes();
    bytes.extend(b"bad \xff byte\n");
    ws.write("late.txt", &bytes);
    let message = rejected(
        ws.read(json!({"file_path": "late.txt", "start_line": 1995}))
            .await,
    );
    assert!(message.contains("binary"), "{message}");
}

#[tokio::test]
async fn dot_dot_escape_is_refused() {
    let ws = workspace();
    let err = ws
        .read(json!({"file_path": "../secret.txt"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Jail(_)), "{err}");
}

#[tokio::test]
async fn absolute_path_outside_is_refused() {
    let ws = workspace();
    let outside = ws.outside.path().join("secret.txt");
    let err = ws
        .read(json!({"file_path": outside.to_str().unwrap()}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Jail(_)), "{err}");
    assert!(!err.to_string().contains("top secret"));
}

#[tokio::test]
async fn symlinked_file_outside_is_refused() {
    let ws = workspace();
    symlink(
        ws.outside.path().join("secret.txt"),
        ws.root.path().join("link.txt"),
    )
    .unwrap();
    let err = ws.read(json!({"file_path": "link.txt"})).await.unwrap_err();
    assert!(matches!(err, ToolError::Jail(_)), "{err}");
    assert!(!err.to_string().contains("top secret"));
}

#[tokio::test]
async fn symlinked_directory_outside_is_refused() {
    let ws = workspace();
    symlink(ws.outside.path(), ws.root.path().join("out")).unwrap();
    let err = ws
        .read(json!({"file_path": "out/secret.txt"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Jail(_)), "{err}");
}

#[tokio::test]
async fn symlink_inside_the_workspace_is_followed() {
    let ws = workspace();
    ws.write("real.txt", "inside\n");
    symlink(
        ws.root.path().join("real.txt"),
        ws.root.path().join("alias.txt"),
    )
    .unwrap();
    let out = ws.read(json!({"file_path": "alias.txt"})).await.unwrap();
    assert!(out.content.contains("1\tinside\n"), "{}", out.content);
}

#[tokio::test]
async fn arguments_sent_as_a_json_string_are_accepted() {
    let ws = workspace();
    ws.write("f.txt", numbered(3));
    let out = ws
        .read(json!("{\"file_path\": \"f.txt\", \"start_line\": 2}"))
        .await
        .unwrap();
    assert!(out.content.contains("lines 2-3 of 3"), "{}", out.content);
}
