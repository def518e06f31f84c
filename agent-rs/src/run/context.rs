//! Keeping a long conversation inside the model's window.
//!
//! Tool outputs are by far the largest messages, and the old ones matter least: the model
//! has already acted on them. When the estimated size nears the window, the oldest tool
//! outputs are replaced by a one-line note (the call itself stays, so the model knows it
//! can run it again), keeping the most recent ones intact, until the estimate is back
//! under a comfortable share of the window.

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
    pub elided_outputs: usize,
    pub tokens_before: u64,
    pub tokens_after: u64,
}

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
    let tool_indices: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m, ChatMessage::Tool { .. }))
        .map(|(i, _)| i)
        .collect();
    let elidable = tool_indices.len().saturating_sub(budget.keep_recent);
    let mut tokens = tokens_before;
    let mut elided = 0;
    for &index in &tool_indices[..elidable] {
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
    (elided > 0).then_some(Elision {
        elided_outputs: elided,
        tokens_before,
        tokens_after: tokens,
    })
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
        assert!(elision.tokens_after <= 4_000, "{elision:?}");
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
    fn emergency_budget_elides_even_below_high_water() {
        let mut messages = conversation(4, 400);
        let budget = ContextBudget::new(10_000);
        assert!(elide_old_tool_outputs(&mut messages, 0, budget).is_none());
        let elision =
            elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(1_000).emergency());
        assert_eq!(elision.map(|e| e.elided_outputs), Some(3));
    }
}
