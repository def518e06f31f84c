//! Small text helpers shared by the prompt and the conversation.

/// Cuts `text` to at most `cap` bytes on a character boundary, saying what was cut.
pub fn cap_text(text: &str, cap: usize, what: &str) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[... {what} truncated: {} more bytes ...]",
        &text[..end],
        text.len() - end
    )
}

/// Rough token count: about four characters per token for English and code. Used only to
/// decide when to shorten the conversation, never for billing.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}
