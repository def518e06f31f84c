//! Finding a hunk's lines in a file, forgiving what models get wrong when they copy text.
//!
//! A model retypes the lines it wants to change, and the copy drifts: trailing spaces
//! vanish, indentation changes, a `-` becomes `‐` or a quote becomes `’`. Each search
//! tries progressively looser comparisons (exact, then trailing whitespace ignored, then
//! surrounding whitespace ignored, then typographic punctuation folded to ASCII) and
//! takes the first position that matches at the strictest level that matches anywhere.

use std::borrow::Cow;

/// How loosely a match was found; the order is from strictest to loosest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fuzz {
    Exact,
    IgnoringTrailingWhitespace,
    IgnoringSurroundingWhitespace,
    IgnoringPunctuationStyle,
}

impl Fuzz {
    const ALL: [Fuzz; 4] = [
        Fuzz::Exact,
        Fuzz::IgnoringTrailingWhitespace,
        Fuzz::IgnoringSurroundingWhitespace,
        Fuzz::IgnoringPunctuationStyle,
    ];

    fn canonical(self, line: &str) -> Cow<'_, str> {
        match self {
            Fuzz::Exact => Cow::Borrowed(line),
            Fuzz::IgnoringTrailingWhitespace => Cow::Borrowed(line.trim_end()),
            Fuzz::IgnoringSurroundingWhitespace => Cow::Borrowed(line.trim()),
            Fuzz::IgnoringPunctuationStyle => Cow::Owned(fold_punctuation(line)),
        }
    }
}

/// Where a sequence was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub fuzz: Fuzz,
}

/// Trims `line` and folds typographic dashes, quotes and spaces to their ASCII forms.
pub fn fold_punctuation(line: &str) -> String {
    line.trim()
        .chars()
        .map(|c| match c {
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            | '\u{2212}' => '-',
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
            '\u{00A0}' | '\u{2002}' | '\u{2003}' | '\u{2004}' | '\u{2005}' | '\u{2006}'
            | '\u{2007}' | '\u{2008}' | '\u{2009}' | '\u{200A}' | '\u{202F}' | '\u{205F}'
            | '\u{3000}' => ' ',
            other => other,
        })
        .collect()
}

/// Finds `pattern` as consecutive lines of `lines`, at or after `from`.
///
/// With `at_end`, the pattern must be the last lines of `lines` (`*** End of File`). An
/// empty pattern matches at `from` (or at the end).
pub fn seek_sequence(
    lines: &[String],
    pattern: &[String],
    from: usize,
    at_end: bool,
) -> Option<Found> {
    if pattern.len() > lines.len() {
        return None;
    }
    let last_start = lines.len() - pattern.len();
    let starts = if at_end {
        last_start..=last_start
    } else if from > last_start {
        return None;
    } else {
        from..=last_start
    };
    Fuzz::ALL.into_iter().find_map(|fuzz| {
        let wanted: Vec<Cow<'_, str>> = pattern.iter().map(|l| fuzz.canonical(l)).collect();
        starts
            .clone()
            .find(|&start| {
                lines[start..start + pattern.len()]
                    .iter()
                    .zip(&wanted)
                    .all(|(line, want)| fuzz.canonical(line) == *want)
            })
            .map(|start| Found { start, fuzz })
    })
}

/// Finds the line an `@@ text` header names, at or after `from`.
///
/// Headers are often abbreviated (`@@ fn main` for `fn main() {`), so after the
/// whole-line comparisons a line that starts with the header text also counts.
pub fn seek_context(lines: &[String], context: &str, from: usize) -> Option<usize> {
    if let Some(found) = seek_sequence(
        lines,
        std::slice::from_ref(&context.to_string()),
        from,
        false,
    ) {
        return Some(found.start);
    }
    let wanted = fold_punctuation(context);
    if wanted.is_empty() {
        return None;
    }
    lines
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, line)| fold_punctuation(line).starts_with(&wanted))
        .map(|(index, _)| index)
}

/// Above this many line comparisons, [`closest_region`] gives up: it only improves an
/// error message.
const CLOSEST_REGION_BUDGET: usize = 4_000_000;

/// The window of `lines` that shares the most lines with `pattern` (loosest comparison),
/// as `(start, shared)`, when any line is shared. Shown to the model when a hunk does not
/// match, so it sees what the file really holds there.
pub fn closest_region(lines: &[String], pattern: &[String]) -> Option<(usize, usize)> {
    if pattern.is_empty() || lines.is_empty() {
        return None;
    }
    let width = pattern.len().min(lines.len());
    let windows = lines.len() - width + 1;
    if windows.saturating_mul(width) > CLOSEST_REGION_BUDGET {
        return None;
    }
    let folded_lines: Vec<String> = lines.iter().map(|l| fold_punctuation(l)).collect();
    let folded_pattern: Vec<String> = pattern.iter().map(|l| fold_punctuation(l)).collect();
    let mut best: Option<(usize, usize)> = None;
    for start in 0..windows {
        let shared = folded_lines[start..start + width]
            .iter()
            .zip(&folded_pattern)
            .filter(|(line, want)| line == want && !want.is_empty())
            .count();
        if shared > 0 && best.is_none_or(|(_, most)| shared > most) {
            best = Some((start, shared));
        }
    }
    best
}

#[cfg(test)]
#[path = "seek_tests.rs"]
mod tests;
