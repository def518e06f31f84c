//! Finding `old_text` in a file and building the replaced text.
//!
//! Matching is exact, byte for byte, with two allowances for how models write text: on a
//! file with CRLF line endings, `\n` in `old_text`/`new_text` means `\r\n`; and an
//! `old_text` ending with a line break still matches the last line of a file that has no
//! final line break (which stays missing). Anything looser is left to the no-match hint, so
//! an edit never lands somewhere the model did not name.

use memchr::memmem;

use crate::text_file::{LineEnding, count_newlines};

/// Where `old_text` was found, and the text to put there.
#[derive(Debug)]
pub(super) struct Matches {
    /// Byte offsets of each match in the original text, in order, not overlapping.
    pub offsets: Vec<usize>,
    pub old: String,
    pub new: String,
}

/// The outcome of looking for `old_text`.
#[derive(Debug)]
pub(super) enum Search {
    Found(Matches),
    NotFound,
}

/// Looks for `old` in `content`, in the forms `content`'s line endings allow.
pub(super) fn find(content: &str, old: &str, new: &str) -> Search {
    let crlf = LineEnding::detect(content.as_bytes()) == LineEnding::CrLf;
    let new = if crlf { to_crlf(new) } else { new.to_string() };
    let mut forms = Vec::with_capacity(2);
    if crlf && old.contains('\n') {
        forms.push(to_crlf(old));
    }
    forms.push(old.to_string());
    for old_form in forms {
        let offsets: Vec<usize> =
            memmem::find_iter(content.as_bytes(), old_form.as_bytes()).collect();
        if !offsets.is_empty() {
            return Search::Found(Matches {
                offsets,
                old: old_form,
                new,
            });
        }
    }
    final_line_without_break(content, old, &new)
}

/// `old` (and `new`) written with a final line break, for a file whose last line has none:
/// matches at the very end, and the file keeps lacking its final break. Only tried once
/// the exact text is nowhere, so no occurrence followed by a break exists elsewhere and
/// the end of the file is the one place meant.
fn final_line_without_break(content: &str, old: &str, new: &str) -> Search {
    if content.ends_with('\n') {
        return Search::NotFound;
    }
    let crlf_old;
    let old = if LineEnding::detect(content.as_bytes()) == LineEnding::CrLf {
        crlf_old = to_crlf(old);
        crlf_old.as_str()
    } else {
        old
    };
    let Some(old_body) = strip_line_break(old) else {
        return Search::NotFound;
    };
    if old_body.is_empty() || !content.ends_with(old_body) {
        return Search::NotFound;
    }
    let new_body = strip_line_break(new).unwrap_or(new);
    Search::Found(Matches {
        offsets: vec![content.len() - old_body.len()],
        old: old_body.to_string(),
        new: new_body.to_string(),
    })
}

fn strip_line_break(text: &str) -> Option<&str> {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
}

/// `\n` line breaks as `\r\n`, leaving breaks that already are `\r\n` alone.
pub(super) fn to_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + count_newlines(text.as_bytes()));
    let mut previous = '\0';
    for ch in text.chars() {
        if ch == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(ch);
        previous = ch;
    }
    out
}

/// 1-based line numbers of byte offsets (sorted ascending), in one pass.
pub(super) fn line_numbers(text: &[u8], offsets: &[usize]) -> Vec<u64> {
    let mut numbers = Vec::with_capacity(offsets.len());
    let mut line = 1u64;
    let mut scanned = 0usize;
    for &offset in offsets {
        line += count_newlines(&text[scanned..offset]) as u64;
        scanned = offset;
        numbers.push(line);
    }
    numbers
}

/// The text with every match replaced, and the byte offset of each replacement in it.
///
/// The replacement is made in `content`'s own buffer, in one pass, so editing a 50 MB file
/// holds it once rather than twice: a shorter `new` moves the text after each match down
/// as it goes, a longer one grows the buffer by the exact total first (for a buffer this
/// large the allocator remaps its pages rather than copying them) and moves the text up
/// from the end.
pub(super) fn replace(content: String, matches: &Matches) -> (String, Vec<usize>) {
    let (old, new) = (matches.old.as_bytes(), matches.new.as_bytes());
    let mut buf = content.into_bytes();
    let mut new_offsets = Vec::with_capacity(matches.offsets.len());
    if new.len() <= old.len() {
        let mut write = matches.offsets.first().copied().unwrap_or(buf.len());
        for (index, &offset) in matches.offsets.iter().enumerate() {
            buf[write..write + new.len()].copy_from_slice(new);
            new_offsets.push(write);
            write += new.len();
            let rest = offset + old.len();
            let end = matches.offsets.get(index + 1).copied().unwrap_or(buf.len());
            buf.copy_within(rest..end, write);
            write += end - rest;
        }
        buf.truncate(write);
    } else {
        let original_len = buf.len();
        let growth = (new.len() - old.len()) * matches.offsets.len();
        buf.reserve_exact(growth);
        buf.resize(original_len + growth, 0);
        let mut write_end = buf.len();
        let mut read_end = original_len;
        for &offset in matches.offsets.iter().rev() {
            let rest = offset + old.len();
            let moved = read_end - rest;
            buf.copy_within(rest..read_end, write_end - moved);
            write_end -= moved + new.len();
            buf[write_end..write_end + new.len()].copy_from_slice(new);
            new_offsets.push(write_end);
            read_end = offset;
        }
        new_offsets.reverse();
    }
    // Whole characters were swapped for whole characters (a match of valid UTF-8 in valid
    // UTF-8 starts and ends on character boundaries), so this never fails; the check is
    // the price of not using `unsafe`.
    let edited = String::from_utf8(buf)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
    (edited, new_offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replaced(content: &str, old: &str, new: &str) -> (String, Vec<usize>) {
        let Search::Found(matches) = find(content, old, new) else {
            panic!("`{old}` not found in `{content}`");
        };
        replace(content.to_string(), &matches)
    }

    #[test]
    fn in_place_replacement_matches_a_copying_one() {
        let content = "ab-xx-cd-xx-xx-éé-xx";
        for new in ["", "y", "yy", "yyy", "long replacement ü"] {
            let (edited, offsets) = replaced(content, "xx", new);
            assert_eq!(edited, content.replace("xx", new), "new = {new:?}");
            let expected: Vec<usize> = edited.match_indices(new).map(|(at, _)| at).collect();
            if !new.is_empty() {
                assert_eq!(offsets, expected[..offsets.len()], "new = {new:?}");
            }
            assert_eq!(offsets.len(), 4);
        }
    }

    #[test]
    fn matches_at_both_ends_and_side_by_side() {
        let (edited, offsets) = replaced("xxxxaxx", "xx", "QQQ");
        assert_eq!(edited, "QQQQQQaQQQ");
        assert_eq!(offsets, vec![0, 3, 7]);
        let (edited, offsets) = replaced("xxxxaxx", "xx", "q");
        assert_eq!(edited, "qqaq");
        assert_eq!(offsets, vec![0, 1, 3]);
    }
}
