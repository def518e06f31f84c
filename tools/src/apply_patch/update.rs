//! Applying an update's hunks to a file's text, in memory.
//!
//! Kept apart from the file system so the matching rules can be tested on strings. Hunks
//! are located in order, each searching from where the previous one ended; the edits are
//! then spliced in from the bottom up so earlier positions stay valid. A file that uses
//! CRLF line endings keeps them; the result always ends with a line ending.

use std::fmt;

use super::parser::Chunk;
use super::seek::{Fuzz, closest_region, seek_context, seek_sequence};

/// The new text of an updated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedText {
    pub text: String,
    /// The loosest comparison any hunk needed.
    pub fuzz: Fuzz,
}

/// A hunk whose lines are not in the file. Its `Display` is written for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HunkMismatch {
    /// 1-based index of the hunk within the file's update.
    pub hunk: usize,
    pub hunks: usize,
    /// Line of the hunk in the patch.
    pub patch_line: usize,
    pub kind: MismatchKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MismatchKind {
    /// An `@@ text` header names a line that is not there.
    ContextNotFound { context: String, from_line: usize },
    /// The hunk's context and `-` lines are not there.
    LinesNotFound {
        expected: Vec<String>,
        from_line: usize,
        at_end: bool,
        /// The most similar lines of the file: 1-based first line, and the lines.
        closest: Option<(usize, Vec<String>)>,
    },
}

impl fmt::Display for HunkMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hunk {} of {} (patch line {}) does not match the file: ",
            self.hunk, self.hunks, self.patch_line
        )?;
        match &self.kind {
            MismatchKind::ContextNotFound { context, from_line } => write!(
                f,
                "no line matching the header `@@ {context}` at or after line {from_line}."
            ),
            MismatchKind::LinesNotFound {
                expected,
                from_line,
                at_end,
                closest,
            } => {
                let place = if *at_end {
                    "as the last lines of the file (the hunk ends with `*** End of File`)"
                        .to_string()
                } else {
                    format!("at or after line {from_line}")
                };
                writeln!(f, "these lines (context and `-` lines) are not {place}:")?;
                for line in expected {
                    writeln!(f, "  | {line}")?;
                }
                if let Some((first, lines)) = closest {
                    let last = first + lines.len().saturating_sub(1);
                    writeln!(
                        f,
                        "The most similar lines in the file are lines {first}-{last}:"
                    )?;
                    for (offset, line) in lines.iter().enumerate() {
                        writeln!(f, "  {:>5} | {line}", first + offset)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Whether the text's first line ending is CRLF.
fn uses_crlf(text: &str) -> bool {
    text.find('\n')
        .is_some_and(|index| text[..index].ends_with('\r'))
}

/// Applies `chunks` to `original`, or says which hunk does not match.
pub fn apply_chunks(original: &str, chunks: &[Chunk]) -> Result<UpdatedText, HunkMismatch> {
    let crlf = uses_crlf(original);
    let mut lines: Vec<String> = original
        .split('\n')
        .map(|line| {
            let line = if crlf {
                line.strip_suffix('\r').unwrap_or(line)
            } else {
                line
            };
            line.to_string()
        })
        .collect();
    // The empty piece after the final line ending is not a line.
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }

    let mut fuzz = Fuzz::Exact;
    let mut replacements: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut cursor = 0;
    for (index, chunk) in chunks.iter().enumerate() {
        let mismatch = |kind| HunkMismatch {
            hunk: index + 1,
            hunks: chunks.len(),
            patch_line: chunk.line,
            kind,
        };
        for context in &chunk.contexts {
            let Some(found) = seek_context(&lines, context, cursor) else {
                return Err(mismatch(MismatchKind::ContextNotFound {
                    context: context.clone(),
                    from_line: cursor + 1,
                }));
            };
            cursor = found + 1;
        }

        if chunk.old_lines.is_empty() {
            // Pure addition: after the `@@` line when there is one, else at the end (before
            // a final blank line, as codex does).
            let at = if chunk.contexts.is_empty() || chunk.end_of_file {
                if lines.last().is_some_and(String::is_empty) {
                    lines.len() - 1
                } else {
                    lines.len()
                }
            } else {
                cursor
            };
            replacements.push((at, 0, chunk.new_lines.clone()));
            continue;
        }

        let mut old: &[String] = &chunk.old_lines;
        let mut new: &[String] = &chunk.new_lines;
        let mut found = seek_sequence(&lines, old, cursor, chunk.end_of_file);
        if found.is_none() && old.last().is_some_and(String::is_empty) {
            // A final empty line in the hunk often stands for the file's last line ending.
            old = &old[..old.len() - 1];
            if new.last().is_some_and(String::is_empty) {
                new = &new[..new.len() - 1];
            }
            found = seek_sequence(&lines, old, cursor, chunk.end_of_file);
        }
        let Some(found) = found else {
            let closest = closest_region(&lines, &chunk.old_lines).map(|(start, _)| {
                let end = (start + chunk.old_lines.len()).min(lines.len());
                (start + 1, lines[start..end].to_vec())
            });
            return Err(mismatch(MismatchKind::LinesNotFound {
                expected: chunk.old_lines.clone(),
                from_line: cursor + 1,
                at_end: chunk.end_of_file,
                closest,
            }));
        };
        fuzz = fuzz.max(found.fuzz);
        // Context lines keep the file's text: a loose match must not rewrite them.
        let new = new
            .iter()
            .zip(&chunk.context_of_new)
            .map(|(line, context)| match context {
                Some(offset) if *offset < old.len() => lines[found.start + offset].clone(),
                _ => line.clone(),
            })
            .collect();
        replacements.push((found.start, old.len(), new));
        cursor = found.start + old.len();
    }

    // Bottom-up, so each splice leaves the positions above it valid. The sort is stable:
    // of two edits at one position, the earlier hunk's lines end up first.
    replacements.sort_by_key(|(start, _, _)| *start);
    for (start, len, new) in replacements.into_iter().rev() {
        lines.splice(start..start + len, new);
    }

    let eol = if crlf { "\r\n" } else { "\n" };
    let mut text = lines.join(eol);
    if !lines.is_empty() {
        text.push_str(eol);
    }
    Ok(UpdatedText { text, fuzz })
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
