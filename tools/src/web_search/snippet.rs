//! Making search-result text plain: search APIs mark matches up with HTML
//! (`<strong>`, `&quot;`), which is noise to a model.

use std::sync::LazyLock;

use regex::Regex;

/// Longest snippet shown, in characters; search APIs occasionally return whole pages.
const MAX_SNIPPET_CHARS: usize = 600;

static TAG: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"<[^<>]*>").ok());

/// Tags removed, entities decoded, whitespace collapsed, length bounded.
pub fn plain_text(html: &str) -> String {
    let without_tags = match TAG.as_ref() {
        Some(tag) => tag.replace_all(html, ""),
        None => html.into(),
    };
    let decoded = decode_entities(&without_tags);
    let collapsed = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= MAX_SNIPPET_CHARS {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(MAX_SNIPPET_CHARS).collect();
    cut.push('…');
    cut
}

/// Decodes the named entities search snippets use and numeric ones; anything else is
/// left as written.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let decoded = rest[1..]
            .char_indices()
            .take(11)
            .find(|&(_, ch)| ch == ';')
            .and_then(|(end, _)| decode_entity(&rest[1..=end]).map(|ch| (ch, end + 2)));
        match decoded {
            Some((ch, consumed)) => {
                out.push(ch);
                rest = &rest[consumed..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    let named = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "laquo" => '«',
        "raquo" => '»',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            return char::from_u32(code);
        }
    };
    Some(named)
}

#[cfg(test)]
#[path = "snippet_tests.rs"]
mod tests;
