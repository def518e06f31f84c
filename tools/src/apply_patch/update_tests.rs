use super::*;
use crate::apply_patch::parser::{FileOp, parse_patch};

/// The hunks of a one-file update, from the lines after `*** Update File:`.
fn hunks(body: &str) -> Vec<Chunk> {
    let text = format!("*** Begin Patch\n*** Update File: f\n{body}\n*** End Patch");
    match parse_patch(&text).unwrap().ops.remove(0) {
        FileOp::Update { chunks, .. } => chunks,
        other => panic!("expected an update, got {other:?}"),
    }
}

fn apply(original: &str, body: &str) -> Result<String, HunkMismatch> {
    apply_chunks(original, &hunks(body)).map(|updated| updated.text)
}

#[test]
fn replaces_the_matched_lines_and_keeps_the_rest() {
    assert_eq!(
        apply("a\nb\nc\n", "@@\n a\n-b\n+B\n c").unwrap(),
        "a\nB\nc\n"
    );
}

#[test]
fn result_ends_with_a_newline_even_if_the_file_did_not() {
    assert_eq!(apply("a\nb", "@@\n-b\n+c").unwrap(), "a\nc\n");
}

#[test]
fn crlf_file_keeps_crlf_endings() {
    assert_eq!(
        apply("a\r\nb\r\n", "@@\n a\n-b\n+c\n+d").unwrap(),
        "a\r\nc\r\nd\r\n"
    );
}

#[test]
fn lf_file_with_a_stray_carriage_return_stays_lf() {
    assert_eq!(apply("a\nb\r\nc\n", "@@\n-a\n+A").unwrap(), "A\nb\r\nc\n");
}

#[test]
fn pure_addition_without_header_goes_at_the_end() {
    assert_eq!(apply("a\nb\n", "@@\n+c").unwrap(), "a\nb\nc\n");
}

#[test]
fn pure_addition_without_header_goes_before_a_final_blank_line() {
    assert_eq!(apply("a\n\n", "@@\n+c").unwrap(), "a\nc\n\n");
}

#[test]
fn pure_addition_after_a_header_goes_right_after_the_header_line() {
    assert_eq!(
        apply("[a]\nx = 1\n[b]\ny = 2\n", "@@ [b]\n+z = 3").unwrap(),
        "[a]\nx = 1\n[b]\nz = 3\ny = 2\n"
    );
}

#[test]
fn header_chooses_between_identical_blocks() {
    let file = "fn a() {\n    x\n}\nfn b() {\n    x\n}\n";
    assert_eq!(
        apply(file, "@@ fn b() {\n-    x\n+    y").unwrap(),
        "fn a() {\n    x\n}\nfn b() {\n    y\n}\n"
    );
}

#[test]
fn later_hunks_search_after_earlier_ones() {
    assert_eq!(
        apply("x\nx\nx\n", "@@\n-x\n+1\n@@\n-x\n+2").unwrap(),
        "1\n2\nx\n"
    );
}

#[test]
fn loosely_matched_context_keeps_the_file_text() {
    let updated = apply_chunks("  keep  \nold\n", &hunks("@@\n keep\n-old\n+new")).unwrap();
    assert_eq!(updated.text, "  keep  \nnew\n");
    assert_eq!(updated.fuzz, Fuzz::IgnoringSurroundingWhitespace);
}

#[test]
fn unicode_punctuation_in_the_file_matches_ascii_in_the_patch() {
    let updated = apply_chunks("a \u{2013} b\n", &hunks("@@\n-a - b\n+a to b")).unwrap();
    assert_eq!(updated.text, "a to b\n");
    assert_eq!(updated.fuzz, Fuzz::IgnoringPunctuationStyle);
}

#[test]
fn end_of_file_hunk_edits_the_last_occurrence() {
    assert_eq!(
        apply("}\nmid\n}\n", "@@\n-}\n+};\n*** End of File").unwrap(),
        "}\nmid\n};\n"
    );
}

#[test]
fn end_of_file_hunk_not_at_the_end_does_not_match() {
    let err = apply("a\nb\n", "@@\n-a\n*** End of File").unwrap_err();
    assert!(matches!(
        err.kind,
        MismatchKind::LinesNotFound { at_end: true, .. }
    ));
    assert!(err.to_string().contains("last lines of the file"));
}

#[test]
fn trailing_empty_line_in_the_hunk_may_stand_for_the_final_newline() {
    assert_eq!(
        apply("a\nb\n", "@@\n a\n-b\n+c\n \n*** End of File").unwrap(),
        "a\nc\n"
    );
}

#[test]
fn removing_every_line_leaves_an_empty_file() {
    assert_eq!(apply("a\nb\n", "@@\n-a\n-b").unwrap(), "");
}

#[test]
fn missing_lines_are_quoted_with_the_closest_region() {
    let err = apply("one\ntwo\nthree\n", "@@\n one\n-deux\n+2\n three\n@@\n-zzz").unwrap_err();
    assert_eq!((err.hunk, err.hunks, err.patch_line), (1, 2, 3));
    assert_eq!(
        err.kind,
        MismatchKind::LinesNotFound {
            expected: vec!["one".into(), "deux".into(), "three".into()],
            from_line: 1,
            at_end: false,
            closest: Some((1, vec!["one".into(), "two".into(), "three".into()])),
        }
    );
    let message = err.to_string();
    assert!(message.contains("hunk 1 of 2 (patch line 3)"), "{message}");
    assert!(message.contains("  | deux"), "{message}");
    assert!(message.contains("    2 | two"), "{message}");
}

#[test]
fn second_hunk_failure_names_it_and_where_the_search_began() {
    let err = apply("a\nb\nc\n", "@@\n-b\n+B\n@@\n-a").unwrap_err();
    assert_eq!(err.hunk, 2);
    assert!(matches!(
        err.kind,
        MismatchKind::LinesNotFound { from_line: 3, .. }
    ));
}

#[test]
fn missing_header_line_is_reported() {
    let err = apply("a\n", "@@ fn nowhere\n-a").unwrap_err();
    assert_eq!(
        err.kind,
        MismatchKind::ContextNotFound {
            context: "fn nowhere".into(),
            from_line: 1,
        }
    );
    assert!(err.to_string().contains("`@@ fn nowhere`"));
}
