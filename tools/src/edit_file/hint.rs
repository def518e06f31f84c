//! What to tell the model when `old_text` is not in the file.
//!
//! "No match" alone makes a model guess again, often wrongly. The usual causes are
//! indentation or spacing that differ from the file, line numbers copied from
//! `read_file_content`, or a line that was changed since it was read. The hint names the
//! one that applies: a place that matches when whitespace is ignored, or the lines most
//! like the first line of `old_text`, with their numbers so the model can read around them.

use std::fmt::Write as _;

use similar::TextDiff;

use crate::text_file::{number_width, push_numbered_line};

/// Most places listed where a whitespace-insensitive match exists.
const MAX_LOOSE_MATCHES: usize = 3;
/// Lines of a whitespace-insensitive match shown, so the model can copy the exact text.
const MAX_LOOSE_LINES_SHOWN: usize = 12;
/// Candidates kept by the cheap word filter before they are ranked by edit similarity.
const SIMILAR_CANDIDATES: usize = 20;
/// Similar lines shown.
const SIMILAR_SHOWN: usize = 3;
/// Below this similarity (0..1) a line is not worth showing.
const SIMILARITY_CUTOFF: f32 = 0.5;
/// Longest line shown in a hint, in characters.
const MAX_HINT_LINE_CHARS: usize = 200;

/// The message for an `old_text` found nowhere in `content`.
pub(super) fn no_match_message(display: &str, content: &str, old: &str) -> String {
    let mut message = format!(
        "old_text was not found in `{display}` (it must match exactly, including whitespace)."
    );
    let old_lines = trimmed_block(old);
    if old_lines.is_empty() {
        return message;
    }
    if old_lines.iter().any(|line| looks_numbered(line)) {
        message.push_str(
            "\nold_text seems to start lines with line numbers copied from read_file_content; \
             the numbers and the tab after them are not part of the file, leave them out.",
        );
    }

    let loose = whitespace_insensitive_matches(content, &old_lines);
    if let Some(&first) = loose.first() {
        let places: Vec<String> = loose.iter().map(u64::to_string).collect();
        let _ = write!(
            message,
            "\nA match ignoring whitespace exists at line {} (indentation, spacing or line \
             endings differ). The file has there:\n",
            places.join(", line ")
        );
        let shown = old_lines.len().min(MAX_LOOSE_LINES_SHOWN);
        push_lines(&mut message, content, first, shown);
        message.push_str("Copy old_text exactly from these lines and try again.");
        return message;
    }

    let first_line = old_lines[0].trim();
    let similar = most_similar_lines(content, first_line);
    if similar.is_empty() {
        message.push_str(
            "\nNo line resembles the first line of old_text; the text may have changed or be \
             in another file. Read the file again with read_file_content (or use search_code).",
        );
    } else {
        let _ = write!(
            message,
            "\nLines most similar to the first line of old_text ({}):\n",
            shorten(first_line)
        );
        let width = similar
            .iter()
            .map(|(number, _)| number_width(*number))
            .max()
            .unwrap_or(1);
        for (number, line) in &similar {
            push_numbered_line(&mut message, *number, width, &shorten(line));
        }
        message.push_str(
            "Read the file around these lines with read_file_content and copy old_text exactly.",
        );
    }
    message
}

/// The lines of `old`, without blank lines at either end.
fn trimmed_block(old: &str) -> Vec<&str> {
    let lines: Vec<&str> = old.lines().collect();
    let start = lines.iter().position(|line| !line.trim().is_empty());
    let end = lines.iter().rposition(|line| !line.trim().is_empty());
    match (start, end) {
        (Some(start), Some(end)) => lines[start..=end].to_vec(),
        _ => Vec::new(),
    }
}

/// `   12\tcode`, the way read_file_content shows a line.
fn looks_numbered(line: &str) -> bool {
    let trimmed = line.trim_start_matches(' ');
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && trimmed[digits..].starts_with('\t')
}

fn same_ignoring_whitespace(a: &str, b: &str) -> bool {
    a.chars()
        .filter(|ch| !ch.is_whitespace())
        .eq(b.chars().filter(|ch| !ch.is_whitespace()))
}

/// First lines (1-based) of the places where `old_lines` match consecutive lines of
/// `content` once whitespace is ignored.
fn whitespace_insensitive_matches(content: &str, old_lines: &[&str]) -> Vec<u64> {
    let mut found = Vec::new();
    let mut lines = content.lines();
    let mut number = 0u64;
    while let Some(line) = lines.next() {
        number += 1;
        if !same_ignoring_whitespace(line, old_lines[0]) {
            continue;
        }
        let mut ahead = lines.clone();
        let rest_matches = old_lines[1..].iter().all(|old| {
            ahead
                .next()
                .is_some_and(|line| same_ignoring_whitespace(line, old))
        });
        if rest_matches {
            found.push(number);
            if found.len() == MAX_LOOSE_MATCHES {
                break;
            }
        }
    }
    found
}

/// Lines of `content` most like `target`, best first: a cheap pass keeps the lines that
/// share the most words with it, then those are ranked by character-level similarity.
/// Lines are compared trimmed but returned whole, so the model can copy their indentation.
fn most_similar_lines(content: &str, target: &str) -> Vec<(u64, String)> {
    let mut words: Vec<&str> = target
        .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
        .filter(|word| word.len() >= 2)
        .collect();
    words.sort_unstable();
    words.dedup();
    if words.is_empty() {
        // Only punctuation (`}`, `);`): such lines are everywhere, a list would mislead.
        return Vec::new();
    }

    // (shared words, closeness in length, line number, line)
    let mut candidates: Vec<(usize, usize, u64, &str)> = Vec::with_capacity(SIMILAR_CANDIDATES);
    for (index, line) in content.lines().enumerate() {
        let shared = words.iter().filter(|word| line.contains(**word)).count();
        if shared == 0 {
            continue;
        }
        let trimmed = line.trim();
        let distance = trimmed.len().abs_diff(target.len());
        let key = (shared, usize::MAX - distance);
        if candidates.len() < SIMILAR_CANDIDATES {
            candidates.push((key.0, key.1, index as u64 + 1, line));
            continue;
        }
        if let Some(worst) = candidates
            .iter_mut()
            .min_by_key(|candidate| (candidate.0, candidate.1))
            && key > (worst.0, worst.1)
        {
            *worst = (key.0, key.1, index as u64 + 1, line);
        }
    }

    let mut ranked: Vec<(f32, u64, &str)> = candidates
        .into_iter()
        .map(|(_, _, number, line)| {
            let ratio = TextDiff::from_chars(clip(target), clip(line.trim())).ratio();
            (ratio, number, line)
        })
        .filter(|(ratio, _, _)| *ratio >= SIMILARITY_CUTOFF)
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked
        .into_iter()
        .take(SIMILAR_SHOWN)
        .map(|(_, number, line)| (number, line.to_string()))
        .collect()
}

/// Appends `count` lines of `content` from line `first`, numbered.
fn push_lines(out: &mut String, content: &str, first: u64, count: usize) {
    let width = number_width(first + count as u64);
    for (offset, line) in content
        .lines()
        .skip((first - 1) as usize)
        .take(count)
        .enumerate()
    {
        push_numbered_line(out, first + offset as u64, width, &shorten(line));
    }
}

/// At most the first [`MAX_HINT_LINE_CHARS`] characters: enough to judge similarity, and
/// keeps a minified megabyte-long line from making the diff slow.
fn clip(line: &str) -> &str {
    match line.char_indices().nth(MAX_HINT_LINE_CHARS) {
        Some((cut, _)) => &line[..cut],
        None => line,
    }
}

fn shorten(line: &str) -> String {
    match line.char_indices().nth(MAX_HINT_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}
