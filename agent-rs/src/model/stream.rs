//! Folding a streamed Chat Completions answer back into one response.
//!
//! Text arrives in pieces; tool calls arrive in pieces too. The spec keys a call's pieces
//! by `index`: the first usually carries the id and function name, later ones slices of
//! the arguments, and parallel calls may interleave. Real servers bend this (see
//! `chunk.rs`), so a piece finds its call by `index` when it has one (unless it names a
//! different id than the call at that index: some servers number every call 0), else by
//! its id, else it opens a new call when it brings a name, else it continues the last
//! call. Ids missing after all that are made up, and a call whose name only appears
//! inside its arguments (TGI's grammar tools) gets it back from there.
//!
//! An answer is complete once a `finish_reason` or the `[DONE]` sentinel arrived; an
//! error object anywhere in the stream, or a finish reason that means the server gave up
//! (`abort`, `error`, DeepSeek's `insufficient_system_resource`), fails the attempt
//! instead: partial output is never taken for a finished answer.

use super::chunk::{Chunk, ToolCallDelta, WireUsage};
use super::types::{ModelResponse, ToolCall, Usage};

/// Finish reasons that mean the server abandoned the answer.
const ABANDONED: &[&str] = &["abort", "error", "insufficient_system_resource"];

/// The answer so far.
#[derive(Debug, Default)]
pub(super) struct StreamAssembler {
    content: String,
    calls: Vec<PartialToolCall>,
    finish_reason: Option<String>,
    usage: Option<WireUsage>,
    done: bool,
}

#[derive(Debug, Default)]
struct PartialToolCall {
    index: Option<u32>,
    id: String,
    name: String,
    arguments: String,
}

/// Why a stream cannot count as an answer, as the server put it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum StreamFault {
    /// An error object (the whole `{"error": ...}` body or just its value).
    ServerError(serde_json::Value),
    /// A finish reason meaning the server gave up on this answer.
    Abandoned(String),
}

impl StreamAssembler {
    /// Folds one chunk in and returns the text it added, if any. Only the first choice is
    /// read: the client never asks for more than one.
    pub(super) fn push(&mut self, chunk: Chunk) -> Result<Option<String>, StreamFault> {
        if let Some(error) = chunk.error.filter(|error| !error.is_null()) {
            return Err(StreamFault::ServerError(error));
        }
        for usage in [chunk.usage, chunk.x_groq.and_then(|groq| groq.usage)]
            .into_iter()
            .flatten()
        {
            self.note_usage(usage);
        }
        let mut text = None;
        for choice in chunk.choices {
            if choice.index.is_some_and(|index| index != 0) {
                continue;
            }
            if let Some(usage) = choice.usage {
                self.note_usage(usage);
            }
            if let Some(reason) = choice.finish_reason.filter(|reason| !reason.is_empty()) {
                if ABANDONED.contains(&reason.as_str()) {
                    return Err(StreamFault::Abandoned(reason));
                }
                self.finish_reason = Some(reason);
            }
            let Some(delta) = choice.delta else { continue };
            for call in delta.tool_calls.map(|calls| calls.0).unwrap_or_default() {
                self.add_tool_call_piece(call);
            }
            if let Some(piece) = delta.content.filter(|piece| !piece.is_empty()) {
                self.content.push_str(&piece);
                text = Some(piece);
            }
        }
        Ok(text)
    }

    /// The server sent `data: [DONE]`.
    pub(super) fn mark_done(&mut self) {
        self.done = true;
    }

    /// Whether the server said the answer is whole; a stream that ends before that was cut.
    pub(super) fn is_finished(&self) -> bool {
        self.finish_reason.is_some() || self.done
    }

    /// The text received so far (the text tool-call fallback reads it).
    pub(super) fn content(&self) -> &str {
        &self.content
    }

    /// The response. `next_id` makes up ids for calls that came without one; usage is
    /// `None` when the server sent none.
    pub(super) fn finish(
        self,
        attempts: u32,
        next_id: &mut dyn FnMut() -> String,
    ) -> (ModelResponse, bool) {
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .map(|call| call.into_tool_call(next_id))
            .collect();
        let usage = self.usage.map(|usage| Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: if usage.total_tokens == 0 {
                usage.prompt_tokens + usage.completion_tokens
            } else {
                usage.total_tokens
            },
        });
        let response = ModelResponse {
            content: (!self.content.is_empty()).then_some(self.content),
            tool_calls,
            usage: usage.unwrap_or_default(),
            usage_estimated: usage.is_none(),
            finish_reason: self.finish_reason,
            attempts,
        };
        (response, usage.is_some())
    }

    /// The last usage a server sent is the whole answer's (servers with continuous usage
    /// send growing counts); an all-zero one never replaces real counts.
    fn note_usage(&mut self, usage: WireUsage) {
        let empty = usage == WireUsage::default();
        if !empty || self.usage.is_none() {
            self.usage = Some(usage);
        }
    }

    fn add_tool_call_piece(&mut self, piece: ToolCallDelta) {
        let slot = self.slot_for(&piece);
        let call = &mut self.calls[slot];
        if let Some(id) = piece.id.filter(|id| !id.is_empty())
            && call.id.is_empty()
        {
            call.id = id;
        }
        let Some(function) = piece.function else {
            return;
        };
        if let Some(name) = function.name.filter(|name| !name.is_empty()) {
            // Most servers send the whole name once; some repeat it in every piece, a few
            // split it. Append only what is new.
            if name != call.name {
                call.name.push_str(&name);
            }
        }
        if let Some(arguments) = function.arguments {
            if call.arguments.is_empty() {
                call.arguments = arguments.0;
            } else {
                call.arguments.push_str(&arguments.0);
            }
        }
    }

    /// Which call a piece belongs to, opening a new one when it starts one.
    fn slot_for(&mut self, piece: &ToolCallDelta) -> usize {
        let id = piece.id.as_deref().filter(|id| !id.is_empty());
        let name = piece
            .function
            .as_ref()
            .and_then(|function| function.name.as_deref())
            .filter(|name| !name.is_empty());
        let found = match piece.index {
            Some(index) => self
                .calls
                .iter()
                .rposition(|call| call.index == Some(index))
                .filter(|&at| {
                    let known = &self.calls[at].id;
                    id.is_none_or(|id| known.is_empty() || known == id)
                }),
            None => match id {
                Some(id) => self.calls.iter().position(|call| call.id == id),
                None => self.calls.len().checked_sub(1).filter(|&last| {
                    let call = &self.calls[last];
                    call.index.is_none()
                        && name.is_none_or(|name| call.name == name && call.arguments.is_empty())
                }),
            },
        };
        found.unwrap_or_else(|| {
            self.calls.push(PartialToolCall {
                index: piece.index,
                ..PartialToolCall::default()
            });
            self.calls.len() - 1
        })
    }
}

impl PartialToolCall {
    fn into_tool_call(self, next_id: &mut dyn FnMut() -> String) -> ToolCall {
        let (name, arguments) = if self.name.is_empty() {
            recover_embedded_name(&self.arguments).unwrap_or((self.name, self.arguments))
        } else {
            (self.name, self.arguments)
        };
        ToolCall {
            // The loop pairs each result with its call by id, so every call needs one.
            id: if self.id.is_empty() {
                next_id()
            } else {
                self.id
            },
            name,
            arguments: if arguments.trim().is_empty() {
                "{}".to_string()
            } else {
                arguments
            },
        }
    }
}

/// A call streamed without a name, whose arguments carry it instead: TGI's grammar tools
/// write `{"function": {"_name": "get_weather", "location": ...}}` (often followed by the
/// model's end token, `</s>`); models without a tool template write `{"name": ...,
/// "arguments": {...}}`. Returns the name and the real arguments.
fn recover_embedded_name(arguments: &str) -> Option<(String, String)> {
    let text = arguments.trim();
    let text = text.strip_suffix("</s>").unwrap_or(text).trim_end();
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if let Some(function) = value.get("function").and_then(|f| f.as_object()) {
        let name = function.get("_name")?.as_str()?.to_string();
        let mut rest = function.clone();
        rest.remove("_name");
        return Some((name, serde_json::Value::Object(rest).to_string()));
    }
    let name = value.get("name")?.as_str()?.to_string();
    let arguments = match value.get("arguments").or_else(|| value.get("parameters")) {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => "{}".to_string(),
    };
    Some((name, arguments))
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
