//! The OpenAI Chat Completions wire shapes the scripted server answers with.
//!
//! The agent's client deserializes these with `async-openai`, so field names and nesting
//! follow the real API (`chat.completion` objects, `chat.completion.chunk` deltas, the
//! `{"error": {...}}` envelope). Streams are cut into several deltas on purpose, tool
//! call arguments included, and parallel tool calls are interleaved by index, so the
//! client's delta assembly is exercised the way a real server exercises it.

use serde_json::{Value, json};

use super::script::ScriptedUsage;

/// How many deltas a message's text is split into when streamed.
const CONTENT_PIECES: usize = 4;
/// How many deltas each tool call's arguments string is split into when streamed.
const ARGUMENT_PIECES: usize = 3;

/// Identity shared by every chunk of one completion.
#[derive(Debug, Clone)]
pub(crate) struct CompletionMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

/// A tool call with its id assigned and arguments already serialized.
#[derive(Debug, Clone)]
pub(crate) struct ToolCallOut {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One assistant answer, before it is put in wire form.
#[derive(Debug, Clone)]
pub(crate) struct AssistantTurn {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCallOut>,
    pub usage: Usage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Usage {
    /// The step's own counts when it has them; otherwise about four characters a token,
    /// counted over the request's `messages` and the answer's text, names and arguments.
    pub(crate) fn resolve(
        scripted: Option<ScriptedUsage>,
        request: &Value,
        content: Option<&str>,
        tool_calls: &[ToolCallOut],
    ) -> Self {
        if let Some(usage) = scripted {
            return Self {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            };
        }
        let prompt_chars = request
            .get("messages")
            .map_or(0, |messages| messages.to_string().chars().count());
        let completion_chars = content.map_or(0, |text| text.chars().count())
            + tool_calls
                .iter()
                .map(|call| call.name.chars().count() + call.arguments.chars().count())
                .sum::<usize>();
        Self {
            prompt_tokens: tokens_for_chars(prompt_chars),
            completion_tokens: tokens_for_chars(completion_chars),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens.saturating_add(self.completion_tokens),
        })
    }
}

fn tokens_for_chars(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

impl AssistantTurn {
    fn finish_reason(&self) -> &'static str {
        if self.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    /// The non-streaming `chat.completion` object.
    pub(crate) fn to_response(&self, meta: &CompletionMeta) -> Value {
        let mut message = json!({
            "role": "assistant",
            "content": self.content,
            "refusal": null,
        });
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
        }
        json!({
            "id": meta.id,
            "object": "chat.completion",
            "created": meta.created,
            "model": meta.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": self.finish_reason(),
            }],
            "usage": self.usage.to_json(),
            "system_fingerprint": null,
        })
    }

    /// The `chat.completion.chunk` objects of a full stream, `[DONE]` excluded.
    pub(crate) fn to_chunks(&self, meta: &CompletionMeta, include_usage: bool) -> Vec<Value> {
        let chunks = ChunkWriter {
            meta,
            include_usage,
        };
        let has_content = self.content.as_deref().is_some_and(|text| !text.is_empty());
        let mut out = vec![chunks.delta(
            json!({"role": "assistant", "content": if has_content { json!("") } else { Value::Null }}),
            None,
        )];
        if let Some(content) = &self.content {
            for piece in split_pieces(content, CONTENT_PIECES) {
                out.push(chunks.delta(json!({"content": piece}), None));
            }
        }
        for tool_delta in interleaved_tool_call_deltas(&self.tool_calls) {
            out.push(chunks.delta(json!({"tool_calls": [tool_delta]}), None));
        }
        out.push(chunks.delta(json!({}), Some(self.finish_reason())));
        if include_usage {
            out.push(chunks.usage(self.usage));
        }
        out
    }
}

/// The chunks a stream sends before the scripted connection cut: the role, then the
/// partial text.
pub(crate) fn cut_stream_chunks(meta: &CompletionMeta, partial: &str) -> Vec<Value> {
    let chunks = ChunkWriter {
        meta,
        include_usage: false,
    };
    vec![
        chunks.delta(json!({"role": "assistant", "content": ""}), None),
        chunks.delta(json!({"content": partial}), None),
    ]
}

struct ChunkWriter<'a> {
    meta: &'a CompletionMeta,
    include_usage: bool,
}

impl ChunkWriter<'_> {
    fn envelope(&self, choices: Value) -> Value {
        let mut chunk = json!({
            "id": self.meta.id,
            "object": "chat.completion.chunk",
            "created": self.meta.created,
            "model": self.meta.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if self.include_usage {
            // The real API sends `usage: null` on every chunk but the last when asked.
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    fn delta(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        self.envelope(json!([{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        }]))
    }

    fn usage(&self, usage: Usage) -> Value {
        let mut chunk = self.envelope(json!([]));
        chunk["usage"] = usage.to_json();
        chunk
    }
}

/// Each call opens with a delta carrying its id, type and name, then its arguments
/// follow in pieces; calls take turns, so deltas of different indexes interleave.
fn interleaved_tool_call_deltas(calls: &[ToolCallOut]) -> Vec<Value> {
    let per_call: Vec<Vec<Value>> = calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            let mut deltas = vec![json!({
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            })];
            deltas.extend(
                split_pieces(&call.arguments, ARGUMENT_PIECES)
                    .into_iter()
                    .map(|piece| json!({"index": index, "function": {"arguments": piece}})),
            );
            deltas
        })
        .collect();
    let rounds = per_call.iter().map(Vec::len).max().unwrap_or(0);
    (0..rounds)
        .flat_map(|round| per_call.iter().filter_map(move |deltas| deltas.get(round)))
        .cloned()
        .collect()
}

/// Splits `text` into at most `pieces` non-empty parts of about equal length, on char
/// boundaries; empty text gives no parts.
pub(crate) fn split_pieces(text: &str, pieces: usize) -> Vec<&str> {
    let chars = text.chars().count();
    let pieces = pieces.clamp(1, chars.max(1));
    let per_piece = chars.div_ceil(pieces).max(1);
    let mut out = Vec::with_capacity(pieces);
    let mut rest = text;
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .nth(per_piece)
            .map_or(rest.len(), |(offset, _)| offset);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    out
}

/// The OpenAI error envelope, typed by status the way the real API types its errors.
pub(crate) fn error_body(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        401 => ("authentication_error", Value::from("invalid_api_key")),
        403 => ("permission_error", Value::Null),
        404 => ("not_found_error", Value::Null),
        429 => ("rate_limit_error", Value::from("rate_limit_exceeded")),
        503 => ("server_error", Value::from("service_unavailable")),
        500..=599 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// The message a scripted error step sends when it does not bring its own.
pub(crate) fn default_error_message(status: u16) -> String {
    match status {
        401 => "Incorrect API key provided (scripted).".to_owned(),
        429 => "Rate limit reached (scripted); retry after the Retry-After delay.".to_owned(),
        500 => "The server had an error while processing your request (scripted).".to_owned(),
        503 => "The engine is currently overloaded (scripted).".to_owned(),
        other => format!("Scripted error with HTTP status {other}."),
    }
}

#[cfg(test)]
#[path = "completion_tests.rs"]
mod tests;
