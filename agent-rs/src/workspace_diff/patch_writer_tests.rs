use git2::ObjectType;

use super::*;

fn text_section(
    path: &str,
    old: Option<&'static str>,
    new: Option<&'static str>,
) -> (String, SectionStats) {
    let side = |text: &'static str| Side {
        mode: MODE_REGULAR,
        oid: Oid::hash_object(ObjectType::Blob, text.as_bytes()).unwrap(),
        content: Some(text.as_bytes()),
    };
    let (old, new) = (old.map(side), new.map(side));
    let change = match (old, new) {
        (Some(old), Some(new)) => FileChange::Modified { old, new },
        (None, Some(new)) => FileChange::Added(new),
        (Some(old), None) => FileChange::Deleted(old),
        (None, None) => unreachable!(),
    };
    let mut out = String::new();
    let stats = write_section(&mut out, path.as_bytes(), &change).unwrap();
    (out, stats)
}

#[test]
fn plain_paths_and_spaces_are_not_quoted() {
    assert_eq!(quote_path("a/", b"src/main file.rs"), "a/src/main file.rs");
}

#[test]
fn non_ascii_and_special_bytes_are_quoted_like_git() {
    assert_eq!(quote_path("b/", "é.txt".as_bytes()), r#""b/\303\251.txt""#);
    assert_eq!(quote_path("a/", b"t\tq\"b\\"), r#""a/t\tq\"b\\""#);
    assert_eq!(quote_path("a/", b"\x01\x7f"), r#""a/\001\177""#);
}

#[test]
fn lone_carriage_return_stays_inside_its_line() {
    let mut out = String::new();
    let stats = write_text_hunks(&mut out, "a\rb\n", "a\rc\n");
    assert_eq!(out, "@@ -1 +1 @@\n-a\rb\n+a\rc\n");
    assert_eq!((stats.insertions, stats.deletions), (1, 1));
}

#[test]
fn missing_final_newline_gets_the_marker_on_each_side() {
    let mut out = String::new();
    write_text_hunks(&mut out, "x\ny", "x\nz");
    assert_eq!(
        out,
        "@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+z\n\\ No newline at end of file\n"
    );
}

#[test]
fn hunks_keep_three_lines_of_context_and_split_far_changes() {
    let old: String = (1..=20).map(|n| format!("{n}\n")).collect();
    let new: String = (1..=20)
        .map(|n| match n {
            2 => "two\n".to_owned(),
            19 => "nineteen\n".to_owned(),
            _ => format!("{n}\n"),
        })
        .collect();
    let mut out = String::new();
    write_text_hunks(&mut out, &old, &new);
    let headers: Vec<&str> = out.lines().filter(|line| line.starts_with("@@")).collect();
    assert_eq!(headers, ["@@ -1,5 +1,5 @@", "@@ -16,5 +16,5 @@"]);
}

#[test]
fn added_file_is_diffed_against_dev_null() {
    let (out, stats) = text_section("new.txt", None, Some("one\ntwo\n"));
    assert!(out.starts_with("diff --git a/new.txt b/new.txt\nnew file mode 100644\nindex 0000000000000000000000000000000000000000.."));
    assert!(out.ends_with("--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n"));
    assert_eq!((stats.insertions, stats.deletions), (2, 0));
}

#[test]
fn deleted_file_is_diffed_to_dev_null() {
    let (out, stats) = text_section("old.txt", Some("gone\n"), None);
    assert!(out.contains("deleted file mode 100644\n"));
    assert!(out.ends_with("--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n"));
    assert_eq!((stats.insertions, stats.deletions), (0, 1));
}

#[test]
fn empty_new_file_has_a_header_and_no_hunk() {
    let (out, _) = text_section("empty", None, Some(""));
    assert!(out.ends_with(
        "index 0000000000000000000000000000000000000000..e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\n"
    ));
}

#[test]
fn path_with_a_space_gets_git_trailing_tab_on_file_lines() {
    let (out, _) = text_section("a b.txt", Some("1\n"), Some("2\n"));
    assert!(out.contains("--- a/a b.txt\t\n+++ b/a b.txt\t\n"));
}

#[test]
fn text_that_is_not_utf8_is_written_as_binary() {
    let old = b"caf\xe9\n";
    let new = b"caf\xe8\n";
    let side = |bytes: &'static [u8]| Side {
        mode: MODE_REGULAR,
        oid: Oid::hash_object(ObjectType::Blob, bytes).unwrap(),
        content: Some(bytes),
    };
    let mut out = String::new();
    let change = FileChange::Modified {
        old: side(old),
        new: side(new),
    };
    write_section(&mut out, b"latin1.txt", &change).unwrap();
    assert!(out.contains("GIT binary patch\n"), "{out}");
}

#[test]
fn unknown_new_content_writes_nothing_and_says_why() {
    let old = Side {
        mode: MODE_REGULAR,
        oid: Oid::ZERO_SHA1,
        content: None,
    };
    let new = Side {
        mode: MODE_REGULAR,
        oid: Oid::hash_object(ObjectType::Blob, b"x").unwrap(),
        content: None,
    };
    let mut out = String::new();
    let stats = write_section(&mut out, b"big.bin", &FileChange::Modified { old, new }).unwrap();
    assert_eq!(out, "", "a section git apply would refuse");
    assert!(stats.left_out.unwrap().contains("too large"));
}

#[test]
fn unknown_old_content_gets_a_forward_literal_only() {
    let hunks = binary_hunks("x", b"", b"\0\x01\x02", true).unwrap();
    assert!(hunks.starts_with("literal 3\n"), "{hunks}");
    assert_eq!(hunks.matches("literal").count(), 1);
    assert!(hunks.ends_with("\n\n"));
}
