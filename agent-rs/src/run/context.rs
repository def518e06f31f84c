//! Keeping a long conversation inside the model's window.
//!
//! Tool outputs are by far the largest messages, and the old ones matter least: the model
//! has already acted on them. When the estimated size nears the window, the oldest tool
//! outputs are replaced by a one-line note (the call itself stays, so the model knows it
//! can run it again), keeping the most recent ones intact, until the estimate is back
//! under a comfortable share of the window.
//!
//! Results the model has not seen yet (those after its last message) are never elided
//! silently: when one reply asked for so many calls that their results alone overflow the
//! window, each is shortened to a fair share of what is left (head and tail kept), so the
//! model sees something of every call it made. When even a few hundred bytes each would
//! not fit (thousands of calls in one reply), the first results are shown shortened and
//! the rest are left out, the first of them saying how many and what to do, so the
//! request still fits and the model knows what it has not seen.

use crate::model::ChatMessage;
use crate::output_text::estimate_tokens;

/// When to shorten, and how far.
#[derive(Debug, Clone, Copy)]
pub struct ContextBudget {
    /// The model's context window, in tokens.
    pub window_tokens: u64,
    /// Shorten once the estimate passes this share of the window.
    pub high_water: f64,
    /// ...down to this share.
    pub low_water: f64,
    /// The most recent tool outputs never elided.
    pub keep_recent: usize,
}

impl ContextBudget {
    pub fn new(window_tokens: u64) -> Self {
        Self {
            window_tokens,
            high_water: 0.75,
            low_water: 0.5,
            keep_recent: 3,
        }
    }

    /// The same budget, squeezed: used after the server said the request was too long.
    pub fn emergency(self) -> Self {
        Self {
            high_water: 0.0,
            low_water: self.low_water / 2.0,
            keep_recent: 1,
            ..self
        }
    }
}

/// What an elision pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elision {
    /// Old outputs replaced by a note.
    pub elided_outputs: usize,
    /// Outputs not seen yet, cut to a share of the window (or left out with a note, when
    /// a reply asked for more calls than the window holds).
    pub shortened_outputs: usize,
    pub tokens_before: u64,
    pub tokens_after: u64,
}

/// No unseen output is cut below this many bytes.
const MIN_SHARE_BYTES: usize = 256;

/// Estimated tokens of the conversation (tool definitions add a fixed `overhead`).
pub fn estimate_conversation(messages: &[ChatMessage], overhead: u64) -> u64 {
    overhead + messages.iter().map(message_tokens).sum::<u64>()
}

fn message_tokens(message: &ChatMessage) -> u64 {
    // A few tokens of framing per message, as chat templates add.
    4 + match message {
        ChatMessage::System { content } | ChatMessage::User { content } => estimate_tokens(content),
        ChatMessage::Assistant {
            content,
            tool_calls,
        } => {
            content.as_deref().map(estimate_tokens).unwrap_or(0)
                + tool_calls
                    .iter()
                    .map(|call| estimate_tokens(&call.name) + estimate_tokens(&call.arguments))
                    .sum::<u64>()
        }
        ChatMessage::Tool { content, .. } => estimate_tokens(content),
    }
}

const ELIDED_PREFIX: &str = "[output elided to save context";

/// Shortens old tool outputs when the conversation is over the budget's high-water mark.
/// `None` when nothing needed doing (or nothing could be done).
pub fn elide_old_tool_outputs(
    messages: &mut [ChatMessage],
    overhead: u64,
    budget: ContextBudget,
) -> Option<Elision> {
    let window = budget.window_tokens as f64;
    let tokens_before = estimate_conversation(messages, overhead);
    if (tokens_before as f64) <= window * budget.high_water {
        return None;
    }
    let target = (window * budget.low_water) as u64;
    // The results after the model's last message are the ones it has not seen.
    let unseen_from = messages
        .iter()
        .rposition(|m| matches!(m, ChatMessage::Assistant { .. }))
        .map_or(0, |index| index + 1);
    let tool_indices: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m, ChatMessage::Tool { .. }))
        .map(|(i, _)| i)
        .collect();
    let (seen, unseen) = tool_indices.split_at(tool_indices.partition_point(|&i| i < unseen_from));
    let elidable = seen.len().saturating_sub(budget.keep_recent);
    let mut tokens = tokens_before;
    let mut elided = 0;
    for &index in &seen[..elidable] {
        if tokens <= target {
            break;
        }
        if let ChatMessage::Tool { content, .. } = &mut messages[index] {
            if content.starts_with(ELIDED_PREFIX) {
                continue;
            }
            let note = format!(
                "{ELIDED_PREFIX}: {} bytes; run the tool again if you need it]",
                content.len()
            );
            tokens = tokens - estimate_tokens(content) + estimate_tokens(&note);
            *content = note;
            elided += 1;
        }
    }
    // Unseen results are cut only when the request is still at risk, and then to the
    // comfortable share.
    let mut shortened = 0;
    if (tokens as f64) > window * budget.high_water {
        let excess_bytes = (tokens - target).saturating_mul(4) as usize;
        (shortened, tokens) = fit_unseen(messages, unseen, excess_bytes, tokens);
    }
    (elided + shortened > 0).then_some(Elision {
        elided_outputs: elided,
        shortened_outputs: shortened,
        tokens_before,
        tokens_after: tokens,
    })
}

/// Cuts the unseen outputs at `indices` by about `excess_bytes` in all, each to a fair
/// share (the smaller ones stay whole, the larger ones share the rest equally, none below
/// [`MIN_SHARE_BYTES`]). When those floors alone do not fit, [`leave_out_overflow`]
/// decides instead. Returns how many were changed and the new token estimate.
fn fit_unseen(
    messages: &mut [ChatMessage],
    indices: &[usize],
    excess_bytes: usize,
    tokens: u64,
) -> (usize, u64) {
    let mut sizes: Vec<(usize, usize)> = indices
        .iter()
        .filter_map(|&index| tool_content(&messages[index]).map(|c| (c.len(), index)))
        .collect();
    let total: usize = sizes.iter().map(|(size, _)| size).sum();
    let floors: usize = sizes
        .iter()
        .map(|(size, _)| (*size).min(MIN_SHARE_BYTES))
        .sum();
    let mut allowed = total.saturating_sub(excess_bytes);
    let left_out_before = indices.iter().any(|&index| {
        tool_content(&messages[index]).is_some_and(|c| c.starts_with(LEFT_OUT_PREFIX))
    });
    if allowed < floors || left_out_before {
        return leave_out_overflow(messages, indices, allowed, tokens);
    }
    sizes.sort_unstable();
    let mut tokens = tokens;
    let mut shortened = 0;
    for (position, &(size, index)) in sizes.iter().enumerate() {
        let share = allowed / (sizes.len() - position);
        if size <= share {
            allowed -= size;
            continue;
        }
        allowed -= share;
        if let ChatMessage::Tool { content, .. } = &mut messages[index] {
            let cut = cut_to_fit(content, share);
            tokens = tokens - estimate_tokens(content) + estimate_tokens(&cut);
            *content = cut;
            shortened += 1;
        }
    }
    (shortened, tokens)
}

fn tool_content(message: &ChatMessage) -> Option<&str> {
    match message {
        ChatMessage::Tool { content, .. } => Some(content),
        _ => None,
    }
}

/// How a left-out result starts (the summary too), so a later pass knows it.
const LEFT_OUT_PREFIX: &str = "[left out";
/// What each left-out result but the first says (the first explains); kept short, as
/// there can be thousands.
const LEFT_OUT: &str = "[left out]";
/// A result this small is shown whole: leaving it out would save next to nothing.
const TINY_BYTES: usize = 64;
/// Room kept for the note on the first left-out result.
const SUMMARY_BYTES: usize = 400;

/// Fits the unseen outputs at `indices` into about `allowed` bytes when not even
/// [`MIN_SHARE_BYTES`] each would: in the calls' order, results are shown (cut to that
/// floor) while they fit; from the first that does not, every result but the tiny ones is
/// left out, the first saying how many and why. Every call keeps its own message, as the
/// protocol wants. Returns how many were changed and the new token estimate.
fn leave_out_overflow(
    messages: &mut [ChatMessage],
    indices: &[usize],
    allowed: usize,
    mut tokens: u64,
) -> (usize, u64) {
    let mut budget = allowed.saturating_sub(SUMMARY_BYTES + LEFT_OUT.len() * indices.len());
    let mut fitting = true;
    // `None`: left out; `Some(None)`: unchanged; `Some(Some(cut))`: shown cut.
    let mut plan: Vec<Option<Option<String>>> = Vec::with_capacity(indices.len());
    for &index in indices {
        let Some(content) = tool_content(&messages[index]) else {
            plan.push(Some(None));
            continue;
        };
        if content.starts_with(LEFT_OUT_PREFIX) {
            fitting = false;
            plan.push(None);
            continue;
        }
        if content.len() <= TINY_BYTES {
            plan.push(Some(None));
            continue;
        }
        let cut = (content.len() > MIN_SHARE_BYTES).then(|| cut_to_fit(content, MIN_SHARE_BYTES));
        let cost = cut.as_ref().map_or(content.len(), String::len) - LEFT_OUT.len();
        if fitting && cost <= budget {
            budget -= cost;
            plan.push(Some(cut));
        } else {
            fitting = false;
            plan.push(None);
        }
    }
    let left_out = plan.iter().filter(|step| step.is_none()).count();
    let mut summary = Some(format!(
        "[left out: this reply asked for {} calls, more than the context window holds. All of \
         them ran, but the results of {left_out} (this one and each later one marked \
         [left out]) are not shown; the earlier ones are, shortened. Ask again, a few at a \
         time, for what you still need.]",
        indices.len()
    ));
    let mut changed = 0;
    for (&index, step) in indices.iter().zip(plan) {
        let ChatMessage::Tool { content, .. } = &mut messages[index] else {
            continue;
        };
        let replacement = match step {
            Some(None) => continue,
            Some(Some(cut)) => cut,
            None => summary.take().unwrap_or_else(|| LEFT_OUT.to_string()),
        };
        if *content == replacement {
            continue;
        }
        tokens = tokens - estimate_tokens(content) + estimate_tokens(&replacement);
        *content = replacement;
        changed += 1;
    }
    (changed, tokens)
}

/// `text` in at most about `share` bytes: its head and tail around a note.
fn cut_to_fit(text: &str, share: usize) -> String {
    let keep = share.saturating_sub(120).max(MIN_SHARE_BYTES / 2);
    let head = text.floor_char_boundary(keep * 2 / 3);
    let tail = text.ceil_char_boundary(text.len() - (keep - keep * 2 / 3));
    format!(
        "{}\n[... {} bytes cut to fit the context window: this reply asked for more than it \
         holds; run the call again, narrower, for them ...]\n{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
