#![allow(clippy::unwrap_used, clippy::expect_used)]
//! File names that are not valid UTF-8 (Latin-1 archives, old repositories) reach the
//! model with U+FFFD in place of the bytes it cannot show. The model copies the name as it
//! was shown, and the tools find the file: each component with U+FFFD that does not exist
//! as written is matched against the directory's names shown the same way. Two names
//! that look alike that way are refused as ambiguous, never guessed, and the refusal
//! spells each with its bytes that are not UTF-8 as `\xHH`, which the tools take back.

mod file_tools_support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use file_tools_support::workspace;
use serde_json::json;
use tools::list_directory::ListDirectoryTool;
use tools::search_code::SearchCodeTool;
use tools::{Tool, ToolError};

/// `café.txt` in Latin-1: the `é` is the single byte 0xE9.
fn latin1(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

#[tokio::test]
async fn a_latin1_file_name_shown_by_list_can_be_read_and_edited() {
    let ws = workspace();
    std::fs::write(ws.root.path().join(latin1(b"caf\xe9.txt")), "old text\n").unwrap();
    let listing = ListDirectoryTool
        .call(&ws.ctx, json!({"path": "."}))
        .await
        .unwrap()
        .content;
    assert!(listing.contains("caf\u{FFFD}.txt"), "{listing}");

    let read = ws
        .read(json!({"file_path": "caf\u{FFFD}.txt"}))
        .await
        .unwrap();
    assert!(read.content.contains("old text"), "{}", read.content);
    ws.edit(json!({"file_path": "caf\u{FFFD}.txt", "old_text": "old", "new_text": "new"}))
        .await
        .unwrap();
    let on_disk = std::fs::read_to_string(ws.root.path().join(latin1(b"caf\xe9.txt"))).unwrap();
    assert_eq!(on_disk, "new text\n");
    // The edit replaced the file in place: no second file with a UTF-8 name appeared.
    assert_eq!(std::fs::read_dir(ws.root.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn a_path_found_by_search_through_a_latin1_directory_can_be_read() {
    let ws = workspace();
    let dir = ws.root.path().join(latin1(b"donn\xe9es"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.md"), "needle here\n").unwrap();
    let found = SearchCodeTool
        .call(&ws.ctx, json!({"pattern": "needle"}))
        .await
        .unwrap()
        .content;
    let path = found.lines().next().unwrap().split(':').next().unwrap();
    assert_eq!(path, "donn\u{FFFD}es/notes.md");
    let read = ws.read(json!({"file_path": path})).await.unwrap();
    assert!(read.content.contains("needle here"), "{}", read.content);
}

#[tokio::test]
async fn names_that_look_alike_once_shown_are_named_by_their_escaped_bytes() {
    let ws = workspace();
    std::fs::write(ws.root.path().join(latin1(b"r\xe9sum\xe9")), "one\n").unwrap();
    std::fs::write(ws.root.path().join(latin1(b"r\xe8sum\xe8")), "two\n").unwrap();
    let err = ws
        .read(json!({"file_path": "r\u{FFFD}sum\u{FFFD}"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Jail(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("2 entries"), "{message}");
    // The refusal spells each look-alike so that the tools take it back.
    for (spelling, latin1_name, text) in [
        (r"r\xe8sum\xe8", b"r\xe8sum\xe8".as_slice(), "two"),
        (r"r\xe9sum\xe9", b"r\xe9sum\xe9".as_slice(), "one"),
    ] {
        assert!(message.contains(&format!("`{spelling}`")), "{message}");
        let read = ws.read(json!({"file_path": spelling})).await.unwrap();
        assert!(read.content.contains(text), "{}", read.content);
        ws.edit(json!({"file_path": spelling, "old_text": text, "new_text": "edited"}))
            .await
            .unwrap();
        let on_disk = std::fs::read_to_string(ws.root.path().join(latin1(latin1_name))).unwrap();
        assert_eq!(on_disk, "edited\n");
    }
    assert_eq!(std::fs::read_dir(ws.root.path()).unwrap().count(), 2);
}

#[tokio::test]
async fn an_escape_of_a_low_byte_stays_as_written() {
    let ws = workspace();
    ws.write("a.txt", "secret-free\n");
    // `\x2f` is not turned into `/`, nor `\x2e` into `.`: only bytes 0x80 and up.
    let err = ws
        .read(json!({"file_path": r"x\x2f..\x2fa.txt"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn a_name_that_exists_as_written_wins_over_a_look_alike() {
    let ws = workspace();
    std::fs::write(ws.root.path().join(latin1(b"a\xe9")), "latin1\n").unwrap();
    ws.write("a\u{FFFD}", "literal\n");
    let read = ws.read(json!({"file_path": "a\u{FFFD}"})).await.unwrap();
    assert!(read.content.contains("literal"), "{}", read.content);
}
