use super::*;

fn lines(text: &[&str]) -> Vec<String> {
    text.iter().map(|line| line.to_string()).collect()
}

fn found(start: usize, fuzz: Fuzz) -> Option<Found> {
    Some(Found { start, fuzz })
}

#[test]
fn exact_sequence_is_found_at_its_first_position() {
    let file = lines(&["a", "b", "c", "b", "c"]);
    assert_eq!(
        seek_sequence(&file, &lines(&["b", "c"]), 0, false),
        found(1, Fuzz::Exact)
    );
}

#[test]
fn search_starts_at_the_given_line() {
    let file = lines(&["a", "b", "c", "b", "c"]);
    assert_eq!(
        seek_sequence(&file, &lines(&["b", "c"]), 2, false),
        found(3, Fuzz::Exact)
    );
    assert_eq!(seek_sequence(&file, &lines(&["a"]), 1, false), None);
}

#[test]
fn start_beyond_the_last_possible_position_finds_nothing() {
    let file = lines(&["a", "b"]);
    assert_eq!(seek_sequence(&file, &lines(&["b"]), 5, false), None);
}

#[test]
fn pattern_longer_than_the_file_finds_nothing() {
    assert_eq!(
        seek_sequence(&lines(&["a"]), &lines(&["a", "b"]), 0, false),
        None
    );
}

#[test]
fn empty_pattern_matches_where_the_search_starts() {
    let file = lines(&["a", "b"]);
    assert_eq!(seek_sequence(&file, &[], 1, false), found(1, Fuzz::Exact));
    assert_eq!(seek_sequence(&file, &[], 0, true), found(2, Fuzz::Exact));
}

#[test]
fn trailing_whitespace_is_ignored_when_exact_fails() {
    let file = lines(&["fn a() {  ", "\tx\t"]);
    assert_eq!(
        seek_sequence(&file, &lines(&["fn a() {", "\tx"]), 0, false),
        found(0, Fuzz::IgnoringTrailingWhitespace)
    );
}

#[test]
fn indentation_is_ignored_when_trailing_whitespace_is_not_enough() {
    let file = lines(&["    let x = 1;", "    x"]);
    assert_eq!(
        seek_sequence(&file, &lines(&["let x = 1;", "  x"]), 0, false),
        found(0, Fuzz::IgnoringSurroundingWhitespace)
    );
}

#[test]
fn typographic_punctuation_matches_ascii() {
    let file = lines(&[
        "a \u{2014} b",
        "say \u{201C}hi\u{201D} it\u{2019}s",
        "x\u{00A0}y",
    ]);
    assert_eq!(
        seek_sequence(
            &file,
            &lines(&["a - b", "say \"hi\" it's", "x y"]),
            0,
            false
        ),
        found(0, Fuzz::IgnoringPunctuationStyle)
    );
}

#[test]
fn exact_match_later_wins_over_loose_match_earlier() {
    let file = lines(&["value  ", "value"]);
    assert_eq!(
        seek_sequence(&file, &lines(&["value"]), 0, false),
        found(1, Fuzz::Exact)
    );
}

#[test]
fn end_anchor_only_matches_the_last_lines() {
    let file = lines(&["}", "middle", "}"]);
    assert_eq!(
        seek_sequence(&file, &lines(&["}"]), 0, true),
        found(2, Fuzz::Exact)
    );
    assert_eq!(seek_sequence(&file, &lines(&["middle"]), 0, true), None);
}

#[test]
fn context_prefers_a_whole_line_over_a_prefix() {
    let file = lines(&["fn foobar() {", "fn foo"]);
    assert_eq!(seek_context(&file, "fn foo", 0), Some(1));
}

#[test]
fn context_may_be_the_start_of_a_line() {
    let file = lines(&["fn foo() {", "}", "    fn bar(x: u8) {"]);
    assert_eq!(seek_context(&file, "fn bar", 0), Some(2));
    assert_eq!(seek_context(&file, "fn foo", 1), None);
}

#[test]
fn blank_context_does_not_match_by_prefix() {
    assert_eq!(seek_context(&lines(&["a"]), "  ", 0), None);
}

#[test]
fn closest_region_is_the_window_sharing_most_lines() {
    let file = lines(&["a", "x", "b", "c", "y"]);
    assert_eq!(
        closest_region(&file, &lines(&["b", "c", "z"])),
        Some((2, 2))
    );
}

#[test]
fn closest_region_is_none_when_nothing_is_shared() {
    assert_eq!(closest_region(&lines(&["a", "b"]), &lines(&["q"])), None);
    assert_eq!(closest_region(&lines(&["", "b"]), &lines(&[""])), None);
}

#[test]
fn folding_trims_and_maps_dashes_quotes_and_spaces() {
    assert_eq!(
        fold_punctuation("  \u{2018}a\u{2019}\u{2013}\u{2212}\u{3000}\u{201E}b\u{201D} "),
        "'a'-- \"b\""
    );
}
