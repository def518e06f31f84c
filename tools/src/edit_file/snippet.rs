//! How an edit is shown back to the model: the lines it wrote with a few unchanged lines
//! around them, numbered as `read_file_content` numbers them, and bounded like a read.
//!
//! A snippet has at most [`SNIPPET_MAX_LINES`] lines, and a line longer than
//! [`LINE_MAX_BYTES`] is shown as the window around the replacement (the line's start for
//! the other lines), with the bytes left out counted. So the answer to a one-word edit
//! of a 50 MB minified line is a few hundred bytes, not the line.

use crate::text_file::{number_width, push_numbered_line};

use super::line_count;

/// Unchanged lines shown before and after an edit.
const SNIPPET_CONTEXT: u64 = 3;
/// Most lines shown per edit.
const SNIPPET_MAX_LINES: u64 = 20;
/// Longest line shown whole; longer ones are cut to this many bytes.
const LINE_MAX_BYTES: usize = 500;
/// Bytes shown before the replacement when its line is cut.
const LEAD_BYTES: usize = LINE_MAX_BYTES / 4;

/// Appends the lines around the replacement that starts at byte `offset` (on line
/// `line`) of `text`: a few unchanged lines, the new ones, a few unchanged lines.
pub(super) fn push_snippet(out: &mut String, text: &str, offset: usize, line: u64, new_text: &str) {
    let bytes = text.as_bytes();
    let edit_line_start = memchr::memrchr(b'\n', &bytes[..offset]).map_or(0, |pos| pos + 1);
    let mut start = edit_line_start;
    let mut first = line;
    while first > 1 && line - first < SNIPPET_CONTEXT {
        start = memchr::memrchr(b'\n', &bytes[..start - 1]).map_or(0, |pos| pos + 1);
        first -= 1;
    }
    let new_lines = line_count(new_text).max(1);
    let wanted = (line - first) + new_lines + SNIPPET_CONTEXT;
    let shown = wanted.min(SNIPPET_MAX_LINES);
    let width = number_width(first + wanted);
    let mut number = first;
    for text_line in text[start..].lines().take(shown as usize) {
        let focus = if number == line {
            offset - edit_line_start
        } else {
            0
        };
        push_line(out, number, width, text_line, focus);
        number += 1;
    }
    if wanted > shown && number < line + new_lines {
        out.push_str(&format!(
            "[… the new text goes on to line {}]\n",
            line + new_lines - 1
        ));
    }
}

/// One numbered line; a long one cut to the window around byte `focus`.
fn push_line(out: &mut String, number: u64, width: usize, line: &str, focus: usize) {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() <= LINE_MAX_BYTES {
        push_numbered_line(out, number, width, line);
        return;
    }
    let from = if focus <= LEAD_BYTES {
        0
    } else {
        line.floor_char_boundary((focus - LEAD_BYTES).min(line.len() - LINE_MAX_BYTES))
    };
    let to = line.floor_char_boundary(from + LINE_MAX_BYTES);
    let mut shown = String::with_capacity(LINE_MAX_BYTES + 64);
    if from > 0 {
        shown.push_str(&format!("[… {from} bytes] "));
    }
    shown.push_str(&line[from..to]);
    if to < line.len() {
        shown.push_str(&format!(" [… {} bytes]", line.len() - to));
    }
    push_numbered_line(out, number, width, &shown);
    out.push_str(&format!(
        "[{} bytes of line {number} not shown; it is {} bytes long]\n",
        line.len() - (to - from),
        line.len()
    ));
}
