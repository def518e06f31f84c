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

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
