use smoke_words::{longest_word, word_count};

#[test]
fn longest_word_is_found() {
    assert_eq!(longest_word("a quick brown fox"), Some("quick"));
}

#[test]
fn first_longest_word_wins_a_tie() {
    assert_eq!(longest_word("cat dog emu"), Some("cat"));
}

#[test]
fn text_without_words_has_no_longest_word() {
    assert_eq!(longest_word(""), None);
    assert_eq!(longest_word(" \n\t "), None);
}

#[test]
fn word_count_is_unchanged() {
    assert_eq!(word_count("one two\nthree"), 3);
}
