//! Word statistics for the text editor's status bar.

/// Number of whitespace-separated words in `text`.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_across_lines() {
        assert_eq!(word_count("one two\nthree"), 3);
    }
}
