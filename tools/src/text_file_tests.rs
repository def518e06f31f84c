use std::io::{BufReader, Cursor};
use std::os::unix::fs::PermissionsExt;

use super::*;

#[test]
fn nul_byte_marks_a_file_binary() {
    assert!(looks_binary(b"abc\0def", true));
    assert!(!looks_binary(b"plain text\n", true));
}

#[test]
fn invalid_utf8_marks_a_file_binary() {
    assert!(looks_binary(&[b'a', 0xff, b'b'], false));
    assert!(looks_binary(&[0xc3], true));
}

#[test]
fn character_cut_by_the_sniff_window_is_not_binary() {
    let text = "é".as_bytes();
    assert!(!looks_binary(&text[..1], false));
}

#[test]
fn line_ending_follows_the_first_line_break() {
    assert_eq!(LineEnding::detect(b"a\r\nb\n"), LineEnding::CrLf);
    assert_eq!(LineEnding::detect(b"a\nb\r\n"), LineEnding::Lf);
    assert_eq!(LineEnding::detect(b"no break"), LineEnding::Lf);
    assert_eq!(LineEnding::detect(b"\n"), LineEnding::Lf);
}

#[test]
fn remaining_lines_count_a_last_line_without_break() {
    assert_eq!(count_remaining_lines(&mut Cursor::new(b"")).unwrap(), 0);
    assert_eq!(
        count_remaining_lines(&mut Cursor::new(b"a\nb\n")).unwrap(),
        2
    );
    assert_eq!(count_remaining_lines(&mut Cursor::new(b"a\nb")).unwrap(), 2);
}

#[test]
fn capped_line_reader_keeps_only_the_cap_but_reports_full_length() {
    let mut reader = BufReader::with_capacity(4, Cursor::new(b"abcdefghij\nxy\nlast"));
    let mut kept = Vec::new();
    assert_eq!(
        read_line_capped(&mut reader, &mut kept, 3).unwrap(),
        Some(10)
    );
    assert_eq!(kept, b"abc");
    assert_eq!(
        read_line_capped(&mut reader, &mut kept, 100).unwrap(),
        Some(2)
    );
    assert_eq!(kept, b"xy");
    assert_eq!(
        read_line_capped(&mut reader, &mut kept, 100).unwrap(),
        Some(4)
    );
    assert_eq!(kept, b"last");
    assert_eq!(read_line_capped(&mut reader, &mut kept, 100).unwrap(), None);
}

#[test]
fn numbered_lines_are_right_aligned_and_drop_carriage_returns() {
    let mut out = String::new();
    push_numbered_line(&mut out, 7, 3, "code\r");
    push_numbered_line(&mut out, 10, 3, "more");
    assert_eq!(out, "  7\tcode\n 10\tmore\n");
    assert_eq!(number_width(0), 1);
    assert_eq!(number_width(9), 1);
    assert_eq!(number_width(10), 2);
    assert_eq!(number_width(812_345), 6);
}

#[test]
fn sizes_read_like_a_person_would_write_them() {
    assert_eq!(human_size(812), "812 bytes");
    assert_eq!(human_size(50 * 1024 * 1024), "50.0 MiB");
}

#[test]
fn atomic_write_keeps_the_original_permissions_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sh");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, Permissions::from_mode(0o751)).unwrap();
    let permissions = std::fs::metadata(&path).unwrap().permissions();

    write_atomically(&path, b"new", Some(permissions)).unwrap();

    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o751);
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 1, "the temporary file was left behind");
}

#[test]
fn atomic_write_of_a_new_file_is_not_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.txt");
    write_atomically(&path, b"hello", None).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    // Whatever the umask, the owner can read and write; a bare temp file would be 0o600,
    // so the group/other read bits tell the defaults were used (umask 022 or 002 here).
    assert_eq!(mode & 0o600, 0o600);
    assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
}
