//! Keeping a long conversation inside the model's window.
//!
//! Tool outputs are by far the largest messages, and the old ones matter least: the model
//! has already acted on them. When the estimated size nears the window, the oldest tool
//! outputs are replaced by a one-line note (the call itself stays, so the model knows it
//! can run it again), keeping the most recent ones intact, until the estimate is back
//! under a comfortable share of the window.
//!
//! Results the model has not seen yet (those after its last message) are never elided:
//! when one reply asked for so many calls that their results alone overflow the window,
//! each is shortened to a fair share of what is left (head and tail kept), so the model
//! sees something of every call it made.

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
    /// Outputs not seen yet, cut to a share of the window.
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
/// [`MIN_SHARE_BYTES`]). Returns how many were cut and the new token estimate.
fn fit_unseen(
    messages: &mut [ChatMessage],
    indices: &[usize],
    excess_bytes: usize,
    mut tokens: u64,
) -> (usize, u64) {
    let mut sizes: Vec<(usize, usize)> = indices
        .iter()
        .filter_map(|&index| match &messages[index] {
            ChatMessage::Tool { content, .. } => Some((content.len(), index)),
            _ => None,
        })
        .collect();
    let total: usize = sizes.iter().map(|(size, _)| size).sum();
    let mut allowed = total
        .saturating_sub(excess_bytes)
        .max(MIN_SHARE_BYTES * sizes.len());
    sizes.sort_unstable();
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
mod tests {
    use super::*;

    fn conversation(outputs: usize, size: usize) -> Vec<ChatMessage> {
        let mut messages = vec![
            ChatMessage::System {
                content: "sys".into(),
            },
            ChatMessage::User {
                content: "task".into(),
            },
        ];
        for i in 0..outputs {
            messages.push(ChatMessage::Assistant {
                content: None,
                tool_calls: vec![],
            });
            messages.push(ChatMessage::Tool {
                tool_call_id: format!("call_{i}"),
                content: format!("{i}:{}", "x".repeat(size)),
            });
        }
        messages
    }

    #[test]
    fn small_conversation_is_left_alone() {
        let mut messages = conversation(3, 100);
        let before = messages.clone();
        assert!(elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(10_000)).is_none());
        assert_eq!(format!("{before:?}"), format!("{messages:?}"));
    }

    #[test]
    fn oldest_outputs_are_elided_and_recent_kept() {
        // 10 outputs of ~1000 tokens each against a 8000-token window.
        let mut messages = conversation(10, 4000);
        let elision = elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(8_000)).unwrap();
        // Under the high-water mark: the three most recent and the unseen one stay whole.
        assert!(elision.tokens_after <= 6_000, "{elision:?}");
        assert_eq!(elision.shortened_outputs, 0);
        assert!(elision.tokens_before > 6_000);
        let tool_contents: Vec<&str> = messages
            .iter()
            .filter_map(|m| match m {
                ChatMessage::Tool { content, .. } => Some(content.as_str()),
                _ => None,
            })
            .collect();
        assert!(tool_contents[0].starts_with(ELIDED_PREFIX));
        for recent in &tool_contents[7..] {
            assert!(!recent.starts_with(ELIDED_PREFIX), "recent output elided");
        }
        assert_eq!(
            tool_contents
                .iter()
                .filter(|c| c.starts_with(ELIDED_PREFIX))
                .count(),
            elision.elided_outputs
        );
    }

    #[test]
    fn results_not_seen_yet_are_never_elided() {
        // One reply asked for 50 calls: all their results come after it.
        let mut messages = conversation(0, 0);
        messages.push(ChatMessage::Assistant {
            content: None,
            tool_calls: vec![],
        });
        for i in 0..50 {
            messages.push(ChatMessage::Tool {
                tool_call_id: format!("call_{i}"),
                content: format!("result {i} {}", "y".repeat(40)),
            });
        }
        let before = format!("{messages:?}");
        assert!(elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(200)).is_none());
        assert_eq!(
            before,
            format!("{messages:?}"),
            "nothing can be cut below its share"
        );
    }

    #[test]
    fn unseen_results_over_the_window_are_shortened_evenly() {
        let mut messages = conversation(0, 0);
        messages.push(ChatMessage::Assistant {
            content: None,
            tool_calls: vec![],
        });
        for i in 0..10 {
            messages.push(ChatMessage::Tool {
                tool_call_id: format!("call_{i}"),
                content: format!("start {i}\n{}\nend {i}", "z".repeat(20_000)),
            });
        }
        messages.push(ChatMessage::Tool {
            tool_call_id: "small".into(),
            content: "small result".into(),
        });
        let elision = elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(10_000)).unwrap();
        assert_eq!(elision.elided_outputs, 0);
        assert_eq!(elision.shortened_outputs, 10);
        assert!(elision.tokens_after <= 5_100, "{elision:?}");
        for message in &messages[3..13] {
            let ChatMessage::Tool { content, .. } = message else {
                panic!("not a tool message");
            };
            assert!(content.starts_with("start "), "{content}");
            assert!(content.contains("end "), "the tail is kept too");
            assert!(content.contains("cut to fit the context window"));
        }
        assert!(
            matches!(&messages[13], ChatMessage::Tool { content, .. } if content == "small result")
        );
    }

    #[test]
    fn emergency_budget_elides_even_below_high_water() {
        let mut messages = conversation(4, 400);
        let budget = ContextBudget::new(10_000);
        assert!(elide_old_tool_outputs(&mut messages, 0, budget).is_none());
        let elision =
            elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(1_000).emergency());
        // Three were seen, one is kept as the most recent seen, the last is unseen.
        assert_eq!(elision.map(|e| e.elided_outputs), Some(2));
    }
}
