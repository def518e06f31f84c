//! The conversation of a previous run, rebuilt from its trajectory.
//!
//! The trajectory holds every message the model wrote, every tool call and every result
//! it was given, and the nudges it was sent, so the turns replay exactly as the model saw
//! them (already redacted, as everything in a trajectory is). A run that was itself
//! resumed starts with a `conversation_resumed` event holding what came before it, so a
//! chain of follow-ups keeps its whole history. The system prompt is not replayed: the
//! resumed run writes a fresh one for the workspace as it is now.
//!
//! When the history would take more than half of the model's window, it is replaced by
//! a summary (the tasks, what the model said, which tools it called and how they went),
//! most recent last, so the new message and the new work still fit.

use std::collections::BTreeMap;

use crate::events::{AgentEvent, EventRecord};
use crate::model::{ChatMessage, ToolCall};
use crate::output_text::estimate_tokens;
use crate::run::estimate_conversation;

/// What a tool call without a recorded result is answered with, so the conversation stays
/// well-formed (every call has a result) when a run stopped in the middle of its tools.
const NO_RESULT: &str = "(no result: the run ended before this call finished)";

/// The conversation to continue, ready to follow a fresh system prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The messages after the system prompt, the follow-up message last.
    pub history: Vec<ChatMessage>,
    /// Whether the earlier turns were replaced by a summary.
    pub summarized: bool,
    /// The first task of the chain.
    pub original_task: String,
}

/// The user message that carries a follow-up.
pub fn follow_up_prompt(message: &str) -> String {
    format!(
        "Follow-up from the user (the workspace holds every change made so far):\n{}\n",
        message.trim()
    )
}

/// Rebuilds the conversation of `events` and appends `message`; summarizes the earlier
/// turns when they would take more than half of `window_tokens`.
pub fn restore_conversation(
    events: &[EventRecord],
    message: &str,
    window_tokens: u64,
) -> Option<Restored> {
    let (mut history, original_task) = replay(events)?;
    let mut summarized = false;
    if estimate_conversation(&history, 0) > window_tokens / 2 {
        history = vec![ChatMessage::user(summarize(
            &original_task,
            &history,
            window_tokens,
        ))];
        summarized = true;
    }
    history.push(ChatMessage::user(follow_up_prompt(message)));
    Some(Restored {
        history,
        summarized,
        original_task,
    })
}

/// The messages of a run after its system prompt, and the chain's first task; `None`
/// when the trajectory has no start.
fn replay(events: &[EventRecord]) -> Option<(Vec<ChatMessage>, String)> {
    let mut history = Vec::new();
    let mut original_task = None;
    let mut turn = TurnRecord::default();
    for record in events {
        match &record.event {
            AgentEvent::TaskStarted { task, .. } => {
                original_task.get_or_insert_with(|| task.clone());
                history = vec![ChatMessage::user(format!("Task:\n{}\n", task.trim()))];
            }
            AgentEvent::ConversationResumed {
                original_task: first,
                history: earlier,
                ..
            } => {
                original_task = Some(first.clone());
                history = earlier.clone();
            }
            AgentEvent::Message { turn: n, content } => {
                turn.enter(*n, &mut history);
                turn.content = Some(content.clone());
            }
            AgentEvent::ToolCall {
                turn: n,
                call_id,
                name,
                arguments,
            } => {
                turn.enter(*n, &mut history);
                turn.calls.push(ToolCall {
                    id: call_id.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                });
            }
            AgentEvent::ToolResult {
                turn: n,
                call_id,
                output,
                ..
            } => {
                turn.enter(*n, &mut history);
                turn.results.insert(call_id.clone(), output.clone());
            }
            AgentEvent::Nudge {
                turn: n, message, ..
            } => {
                turn.enter(*n, &mut history);
                turn.nudges.push(message.clone());
            }
            _ => {}
        }
    }
    turn.flush(&mut history);
    original_task.map(|task| (history, task))
}

/// The events of one turn, gathered until the next turn starts.
#[derive(Debug, Default)]
struct TurnRecord {
    turn: Option<u32>,
    content: Option<String>,
    calls: Vec<ToolCall>,
    results: BTreeMap<String, String>,
    nudges: Vec<String>,
}

impl TurnRecord {
    /// Moves on to turn `n`, writing out the one before it.
    fn enter(&mut self, n: u32, history: &mut Vec<ChatMessage>) {
        if self.turn != Some(n) {
            self.flush(history);
            self.turn = Some(n);
        }
    }

    fn flush(&mut self, history: &mut Vec<ChatMessage>) {
        let turn = std::mem::take(self);
        if turn.content.is_some() || !turn.calls.is_empty() {
            history.push(ChatMessage::Assistant {
                content: turn.content,
                tool_calls: turn.calls.clone(),
            });
        }
        let mut results = turn.results;
        for call in turn.calls {
            let content = results
                .remove(&call.id)
                .unwrap_or_else(|| NO_RESULT.to_string());
            history.push(ChatMessage::tool_result(call.id, content));
        }
        history.extend(turn.nudges.into_iter().map(ChatMessage::user));
    }
}

/// Most bytes of one line of the summary (a message, a call's arguments).
const SUMMARY_LINE_BYTES: usize = 400;

/// The earlier conversation in a few lines per turn, capped at a quarter of the window
/// (the oldest lines go first).
pub fn summarize(original_task: &str, history: &[ChatMessage], window_tokens: u64) -> String {
    let mut lines = Vec::new();
    for message in history {
        match message {
            ChatMessage::System { .. } => {}
            ChatMessage::User { content } => lines.push(format!("user: {}", clip(content))),
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => {
                if let Some(text) = content {
                    lines.push(format!("you: {}", clip(text)));
                }
                for call in tool_calls {
                    lines.push(format!(
                        "you called {}({})",
                        call.name,
                        clip(&call.arguments)
                    ));
                }
            }
            ChatMessage::Tool { content, .. } => {
                let first = content.lines().next().unwrap_or("");
                lines.push(format!("  -> {}", clip(first)));
            }
        }
    }
    let cap = usize::try_from(window_tokens).unwrap_or(usize::MAX);
    let mut kept = Vec::new();
    let mut used = 0u64;
    for line in lines.iter().rev() {
        used += estimate_tokens(line) + 1;
        if used > window_tokens / 4 {
            kept.push(format!(
                "[... {} earlier lines left out ...]",
                lines.len() - kept.len()
            ));
            break;
        }
        kept.push(line.clone());
    }
    kept.reverse();
    let mut text = format!(
        "You already worked on this task in this workspace:\n{}\n\nA summary of that \
         conversation (its full record is too long to repeat):\n",
        original_task.trim()
    );
    text.push_str(&kept.join("\n"));
    text.push('\n');
    if text.len() > cap.saturating_mul(4) {
        text = crate::output_text::cap_text(&text, cap.saturating_mul(4), "summary");
    }
    text
}

fn clip(text: &str) -> String {
    let single = text.replace('\n', " ");
    if single.len() <= SUMMARY_LINE_BYTES {
        return single;
    }
    let end = single.floor_char_boundary(SUMMARY_LINE_BYTES);
    format!("{}…", &single[..end])
}

#[cfg(test)]
#[path = "conversation_tests.rs"]
mod tests;
