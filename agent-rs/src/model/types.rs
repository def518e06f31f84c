//! The conversation as the agent loop sees it: provider-neutral messages, tool calls and
//! token usage. The loop and the trajectory record these, never the wire types, so they
//! serialise to the same role-tagged shape the Chat Completions API uses and stay stable
//! when the client library changes.

use std::ops::AddAssign;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Everything one model turn needs besides the settings: the conversation so far and
/// the tools the model may call. Borrowed: the loop keeps both for the whole run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChatRequest<'a> {
    pub messages: &'a [ChatMessage],
    pub tools: &'a [tools::ToolSpec],
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChatMessage {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, matched to it by `tool_call_id`.
    Tool {
        tool_call_id: String,
        content: String,
    },
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self::System {
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::User {
            content: content.into(),
        }
    }

    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::Tool {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
        }
    }
}

/// A function call the model asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: JSON text, not yet validated (models do
    /// write broken JSON, and the tool's own decoding says what is wrong). An empty
    /// argument string is normalised to `{}`.
    pub arguments: String,
}

/// Tokens spent, as the server counted them (or as estimated, see
/// [`ModelResponse::usage_estimated`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// What the model answered in one turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The text the model wrote; `None` when it only called tools.
    pub content: Option<String>,
    /// Calls in the order the model numbered them.
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// True when the server reported no usage and `usage` is a rough estimate
    /// (about four characters per token), so budgets still move.
    pub usage_estimated: bool,
    /// Why the model stopped: `stop`, `length`, `tool_calls`, `content_filter`...
    pub finish_reason: Option<String>,
    /// How many HTTP requests this turn took (1 when nothing had to be retried).
    pub attempts: u32,
}

/// What happens during a turn, as it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelEvent {
    /// An attempt failed in a way worth retrying; the client waits `wait`, then makes
    /// attempt number `attempt` (2 for the first retry). Text deltas already passed on
    /// for this turn are void: the retry starts the answer from scratch.
    Retrying {
        attempt: u32,
        reason: String,
        wait: Duration,
    },
    /// A piece of the answer's text, in order.
    ContentDelta(String),
}

/// Usage estimated for a server that reported none: about four characters per token (the
/// usual rule of thumb for English text and code with BPE tokenizers), over the
/// conversation and tool definitions sent and the answer received; good enough to keep
/// token budgets moving.
pub(super) fn estimate_usage(request: &ChatRequest<'_>, response: &ModelResponse) -> Usage {
    let sent_chars = request
        .messages
        .iter()
        .map(|message| match message {
            ChatMessage::System { content }
            | ChatMessage::User { content }
            | ChatMessage::Tool { content, .. } => content.len(),
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => content.as_deref().map_or(0, str::len) + calls_chars(tool_calls),
        })
        .sum::<usize>()
        + request
            .tools
            .iter()
            .map(|tool| {
                tool.name.len() + tool.description.len() + tool.parameters.to_string().len()
            })
            .sum::<usize>();
    let prompt_tokens = estimate_tokens(sent_chars);
    let completion_tokens = estimate_tokens(
        response.content.as_deref().map_or(0, str::len) + calls_chars(&response.tool_calls),
    );
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

fn calls_chars(calls: &[ToolCall]) -> usize {
    calls
        .iter()
        .map(|call| call.name.len() + call.arguments.len())
        .sum()
}

fn estimate_tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}
