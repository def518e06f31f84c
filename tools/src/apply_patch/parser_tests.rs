use super::*;

fn parse(text: &str) -> Result<Patch, ParseError> {
    parse_patch(text)
}

fn only_chunks(text: &str) -> Vec<Chunk> {
    match parse(text).unwrap().ops.remove(0) {
        FileOp::Update { chunks, .. } => chunks,
        other => panic!("expected an update, got {other:?}"),
    }
}

#[test]
fn parses_add_delete_and_update_with_move_in_order() {
    let patch = parse(
        "*** Begin Patch\n*** Add File: a.txt\n+one\n+two\n*** Delete File: b.txt\n\
         *** Update File: c.txt\n*** Move to: d/c.txt\n@@\n-old\n+new\n*** End Patch\n",
    )
    .unwrap();
    assert_eq!(
        patch.ops,
        vec![
            FileOp::Add {
                path: "a.txt".into(),
                contents: "one\ntwo\n".into(),
                line: 2,
            },
            FileOp::Delete {
                path: "b.txt".into(),
                line: 5,
            },
            FileOp::Update {
                path: "c.txt".into(),
                move_to: Some("d/c.txt".into()),
                chunks: vec![Chunk {
                    contexts: vec![],
                    old_lines: vec!["old".into()],
                    new_lines: vec!["new".into()],
                    context_of_new: vec![None],
                    end_of_file: false,
                    line: 8,
                    added: 1,
                    removed: 1,
                }],
                line: 6,
            },
        ]
    );
}

#[test]
fn add_file_without_lines_is_an_empty_file() {
    let patch = parse("*** Begin Patch\n*** Add File: empty.txt\n*** End Patch").unwrap();
    assert!(matches!(&patch.ops[0], FileOp::Add { contents, .. } if contents.is_empty()));
}

#[test]
fn blank_line_inside_add_file_is_an_empty_line_when_more_lines_follow() {
    let patch =
        parse("*** Begin Patch\n*** Add File: a.txt\n+one\n\n+three\n\n*** End Patch").unwrap();
    assert!(matches!(&patch.ops[0], FileOp::Add { contents, .. } if contents == "one\n\nthree\n"));
}

#[test]
fn whitespace_padded_markers_and_headers_are_accepted() {
    let patch = parse(
        "  *** Begin Patch \n  *** Update File:   foo.txt  \n  @@  \n-old\n+new\n *** End Patch  ",
    )
    .unwrap();
    assert_eq!(patch.ops[0].path(), "foo.txt");
}

#[test]
fn heredoc_wrappers_are_stripped() {
    for open in ["<<EOF", "<<'EOF'", "<<\"EOF\"", "apply_patch <<'EOF'"] {
        let text = format!("{open}\n*** Begin Patch\n*** Delete File: a\n*** End Patch\nEOF\n");
        assert_eq!(parse(&text).unwrap().ops.len(), 1, "wrapper {open}");
    }
}

#[test]
fn markdown_fence_wrapper_is_stripped() {
    let text = "```diff\n*** Begin Patch\n*** Delete File: a\n*** End Patch\n```";
    assert_eq!(parse(text).unwrap().ops[0].path(), "a");
}

#[test]
fn line_numbers_count_from_the_patch_text_as_sent() {
    let text = "\n<<'EOF'\n*** Begin Patch\n*** Frobnicate File: x\n*** End Patch\nEOF";
    assert_eq!(
        parse(text),
        Err(ParseError::InvalidHeader {
            line: 4,
            found: "*** Frobnicate File: x".into(),
        })
    );
}

#[test]
fn patch_without_begin_marker_is_rejected() {
    assert_eq!(
        parse("*** Update File: a\n@@\n-x\n*** End Patch"),
        Err(ParseError::MissingBegin {
            found: "*** Update File: a".into(),
        })
    );
}

#[test]
fn patch_without_end_marker_is_rejected() {
    assert_eq!(
        parse("*** Begin Patch\n*** Delete File: a\n"),
        Err(ParseError::MissingEnd {
            found: "*** Delete File: a".into(),
        })
    );
    assert!(matches!(
        parse("*** Begin Patch"),
        Err(ParseError::MissingEnd { .. })
    ));
}

#[test]
fn empty_text_is_rejected() {
    assert_eq!(parse(" \n\n"), Err(ParseError::Empty));
}

#[test]
fn patch_without_operations_is_rejected() {
    assert_eq!(
        parse("*** Begin Patch\n\n*** End Patch"),
        Err(ParseError::NoOperations)
    );
}

#[test]
fn headers_without_a_path_are_rejected() {
    assert_eq!(
        parse("*** Begin Patch\n*** Add File:  \n+x\n*** End Patch"),
        Err(ParseError::MissingPath {
            line: 2,
            marker: ADD_FILE,
        })
    );
    assert_eq!(
        parse("*** Begin Patch\n*** Update File: a\n*** Move to:\n@@\n-x\n*** End Patch"),
        Err(ParseError::MissingPath {
            line: 3,
            marker: MOVE_TO,
        })
    );
}

#[test]
fn update_without_hunk_is_rejected() {
    assert_eq!(
        parse("*** Begin Patch\n*** Update File: foo.txt\n*** End Patch"),
        Err(ParseError::EmptyUpdate {
            line: 2,
            path: "foo.txt".into(),
        })
    );
}

#[test]
fn hunk_header_without_lines_is_rejected() {
    assert_eq!(
        parse("*** Begin Patch\n*** Update File: f\n@@ fn main\n*** End Patch"),
        Err(ParseError::EmptyHunk {
            line: 3,
            path: "f".into(),
        })
    );
}

#[test]
fn end_of_file_marker_without_lines_is_rejected() {
    assert_eq!(
        parse("*** Begin Patch\n*** Update File: f\n@@\n*** End of File\n*** End Patch"),
        Err(ParseError::EmptyHunk {
            line: 4,
            path: "f".into(),
        })
    );
}

#[test]
fn hunk_line_without_prefix_is_rejected_and_quoted() {
    let err = parse("*** Begin Patch\n*** Update File: f\n@@\n-a\nb\n*** End Patch").unwrap_err();
    assert_eq!(
        err,
        ParseError::BadHunkLine {
            line: 5,
            path: "f".into(),
            found: "b".into(),
        }
    );
    assert!(err.to_string().contains("`b`"));
}

#[test]
fn lines_after_end_of_file_marker_need_a_new_hunk_header() {
    assert!(matches!(
        parse("*** Begin Patch\n*** Update File: f\n@@\n-a\n*** End of File\n-b\n*** End Patch"),
        Err(ParseError::BadHunkLine { line: 6, .. })
    ));
}

#[test]
fn first_hunk_may_omit_its_header() {
    let chunks = only_chunks("*** Begin Patch\n*** Update File: f\n-a\n+b\n*** End Patch");
    assert_eq!(chunks[0].old_lines, vec!["a"]);
    assert_eq!(chunks[0].new_lines, vec!["b"]);
}

#[test]
fn hunk_headers_split_hunks_and_record_context() {
    let chunks = only_chunks(
        "*** Begin Patch\n*** Update File: f\n@@ class A\n@@   def m():\n-x\n+y\n@@\n ctx\n-z\n*** End Patch",
    );
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].contexts, vec!["class A", "def m():"]);
    assert!(chunks[1].contexts.is_empty());
    assert_eq!(chunks[1].old_lines, vec!["ctx", "z"]);
    assert_eq!(chunks[1].new_lines, vec!["ctx"]);
    assert_eq!(chunks[1].context_of_new, vec![Some(0)]);
}

#[test]
fn end_of_file_marker_closes_the_hunk() {
    let chunks = only_chunks(
        "*** Begin Patch\n*** Update File: f\n@@\n last\n+tail\n*** End of File\n*** End Patch",
    );
    assert!(chunks[0].end_of_file);
    assert_eq!(chunks[0].new_lines, vec!["last", "tail"]);
}

#[test]
fn indented_markers_inside_a_hunk_are_context_lines() {
    let chunks = only_chunks(
        "*** Begin Patch\n*** Update File: f\n@@\n @@ -1,2 +1,2 @@\n *** Add File: x\n-a\n*** End Patch",
    );
    assert_eq!(
        chunks[0].old_lines,
        vec!["@@ -1,2 +1,2 @@", "*** Add File: x", "a"]
    );
}

#[test]
fn empty_line_inside_a_hunk_is_an_empty_context_line() {
    let chunks = only_chunks("*** Begin Patch\n*** Update File: f\n@@\n a\n\n-b\n*** End Patch");
    assert_eq!(chunks[0].old_lines, vec!["a", "", "b"]);
}

#[test]
fn blank_lines_closing_a_hunk_are_dropped() {
    let chunks = only_chunks(
        "*** Begin Patch\n*** Update File: f\n@@\n-a\n+b\n\n\n*** Delete File: g\n*** End Patch",
    );
    assert_eq!(chunks[0].old_lines, vec!["a"]);
    assert_eq!(chunks[0].new_lines, vec!["b"]);
}

#[test]
fn added_and_removed_lines_are_counted() {
    let chunks =
        only_chunks("*** Begin Patch\n*** Update File: f\n@@\n a\n-b\n-c\n+d\n*** End Patch");
    assert_eq!((chunks[0].added, chunks[0].removed), (1, 2));
}

#[test]
fn crlf_patch_text_parses_like_lf() {
    let lf = parse("*** Begin Patch\n*** Update File: f\n@@\n-a\n+b\n*** End Patch\n").unwrap();
    let crlf =
        parse("*** Begin Patch\r\n*** Update File: f\r\n@@\r\n-a\r\n+b\r\n*** End Patch\r\n")
            .unwrap();
    assert_eq!(lf, crlf);
}
