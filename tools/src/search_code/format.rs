//! How a search result reads to the model: one `path:line:text` line per match, sorted by
//! path then line, then a summary line that says how many matches there were, whether the
//! list was capped, and what to do about it.

use crate::jail::WorkspaceJail;
use crate::tool::ToolOutput;

use super::{Found, SearchPlan};

pub(super) fn render(
    jail: &WorkspaceJail,
    pattern: &str,
    searched: &str,
    plan: &SearchPlan,
    mut found: Found,
) -> ToolOutput {
    // Each file's lines are already in line order; sorting files is enough.
    found.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));

    let mut text = String::new();
    let mut shown_lines = 0usize;
    let mut shown_files = 0usize;
    for file in &found.files {
        if shown_lines == plan.max_results {
            break;
        }
        let path = jail.display(&file.path);
        shown_files += 1;
        for line in file.lines.iter().take(plan.max_results - shown_lines) {
            text.push_str(&path);
            text.push(':');
            text.push_str(&line.number.to_string());
            text.push(':');
            text.push_str(&line.text);
            text.push('\n');
            shown_lines += 1;
        }
    }

    if shown_lines == 0 {
        text.push_str(&no_match_message(pattern, searched, &found));
    } else {
        text.push_str(&format!(
            "{} in {}",
            plural(shown_lines, "match", "matches"),
            plural(shown_files, "file", "files"),
        ));
        if found.capped {
            text.push_str(&format!(
                " (capped at {}: more matches exist, and the search stopped early, so these \
                 are not necessarily the first ones in path order; narrow the search with \
                 `path`, `glob` or a more specific `pattern`)",
                plan.max_results
            ));
        }
    }
    if found.unreadable > 0 {
        text.push_str(&format!(
            "\n{} could not be read and were skipped",
            plural(
                found.unreadable,
                "file or directory",
                "files or directories"
            ),
        ));
    }

    ToolOutput::success(text).with_details(serde_json::json!({
        "matches": shown_lines,
        "files": shown_files,
        "capped": found.capped,
        "unreadable": found.unreadable,
    }))
}

fn no_match_message(pattern: &str, searched: &str, found: &Found) -> String {
    if found.skipped_binary {
        return format!(
            "no matches: `{searched}` looks like a binary file (it contains NUL bytes) and \
             was not searched"
        );
    }
    format!(
        "no matches for `{pattern}` in `{searched}` (files ignored by .gitignore or .ignore, \
         hidden files and binary files are not searched)"
    )
}

/// A matched line as shown: without its line ending, invalid UTF-8 replaced, and when it
/// is longer than `max_chars` characters, the window of `max_chars` around the match
/// (which starts at byte `match_start`), with markers counting what was left out on each
/// side. A match near the start keeps the line's start, as a reader expects.
pub(super) fn shown_line(bytes: &[u8], match_start: usize, max_chars: usize) -> String {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    let total = text.chars().count();
    if total <= max_chars {
        return text.into_owned();
    }
    let focus = String::from_utf8_lossy(&bytes[..match_start.min(bytes.len())])
        .chars()
        .count();
    // Some context before the match, most of the window after it.
    let lead = max_chars / 3;
    let first = if focus <= lead {
        0
    } else {
        (focus - lead).min(total - max_chars)
    };
    let last = first + max_chars;
    let byte_at = |chars: usize| {
        text.char_indices()
            .nth(chars)
            .map_or(text.len(), |(index, _)| index)
    };
    let (from, to) = (byte_at(first), byte_at(last));
    let mut shown = String::with_capacity(to - from + 64);
    if first > 0 {
        shown.push_str(&format!("[... {first} characters before] "));
    }
    shown.push_str(&text[from..to]);
    if last < total {
        shown.push_str(&format!(" [... {} more characters]", total - last));
    }
    shown
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
