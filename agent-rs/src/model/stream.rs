//! Folding a streamed Chat Completions answer back into one response.
//!
//! Text arrives in pieces; tool calls arrive in pieces too, keyed by `index`: the first
//! delta of a call usually carries its id and function name, later ones carry slices of
//! the arguments. Several calls may be interleaved. With `include_usage` the server adds
//! a last chunk with no choices and the token counts. A stream is only complete once a
//! `finish_reason` arrived: without one it was cut short and the attempt is retried.

use std::collections::BTreeMap;

use async_openai::types::chat::{CreateChatCompletionStreamResponse, FinishReason};

use super::types::{ChatRequest, ModelResponse, ToolCall, Usage};

/// The answer so far.
#[derive(Debug, Default)]
pub(super) struct StreamAssembler {
    content: String,
    tool_calls: BTreeMap<u32, PartialToolCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct PartialToolCall {
    id: String,
    name: String,
    arguments: String,
}

impl StreamAssembler {
    /// Folds one chunk in and returns the text it added, if any. Only the first choice
    /// is read: the client never asks for more than one.
    pub(super) fn push(&mut self, chunk: CreateChatCompletionStreamResponse) -> Option<String> {
        if let Some(usage) = chunk.usage {
            self.usage = Some(Usage {
                prompt_tokens: u64::from(usage.prompt_tokens),
                completion_tokens: u64::from(usage.completion_tokens),
                total_tokens: u64::from(usage.total_tokens),
            });
        }
        let choice = chunk.choices.into_iter().find(|choice| choice.index == 0)?;
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(finish_reason_name(reason).to_string());
        }
        for delta in choice.delta.tool_calls.unwrap_or_default() {
            let call = self.tool_calls.entry(delta.index).or_default();
            if let Some(id) = delta.id.filter(|id| !id.is_empty())
                && call.id.is_empty()
            {
                call.id = id;
            }
            if let Some(function) = delta.function {
                if let Some(name) = function.name {
                    // Most servers send the whole name once; some repeat it in every
                    // delta, a few split it. Append only what is new.
                    if name != call.name {
                        call.name.push_str(&name);
                    }
                }
                if let Some(arguments) = function.arguments {
                    call.arguments.push_str(&arguments);
                }
            }
        }
        let text = choice.delta.content.filter(|text| !text.is_empty())?;
        self.content.push_str(&text);
        Some(text)
    }

    /// Whether the model said it was done; a stream that ends before that was cut.
    pub(super) fn is_finished(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// The response, with usage estimated from `request` when the server sent none.
    pub(super) fn finish(self, request: &ChatRequest, attempts: u32) -> ModelResponse {
        let tool_calls: Vec<ToolCall> = self
            .tool_calls
            .into_iter()
            .map(|(index, call)| ToolCall {
                // A few servers omit ids; the loop still needs one to pair results.
                id: if call.id.is_empty() {
                    format!("call_{index}")
                } else {
                    call.id
                },
                name: call.name,
                arguments: if call.arguments.trim().is_empty() {
                    "{}".to_string()
                } else {
                    call.arguments
                },
            })
            .collect();
        let content = (!self.content.is_empty()).then_some(self.content);
        let (usage, usage_estimated) = match self.usage {
            Some(usage) => (usage, false),
            None => (
                estimate_usage(request, content.as_deref(), &tool_calls),
                true,
            ),
        };
        ModelResponse {
            content,
            tool_calls,
            usage,
            usage_estimated,
            finish_reason: self.finish_reason,
            attempts,
        }
    }
}

fn estimate_usage(request: &ChatRequest, content: Option<&str>, tool_calls: &[ToolCall]) -> Usage {
    let prompt_tokens = estimate_tokens(
        serde_json::to_string(&request.messages)
            .map(|text| text.len())
            .unwrap_or_default()
            + serde_json::to_string(&request.tools)
                .map(|text| text.len())
                .unwrap_or_default(),
    );
    let completion_chars = content.map_or(0, str::len)
        + tool_calls
            .iter()
            .map(|call| call.name.len() + call.arguments.len())
            .sum::<usize>();
    let completion_tokens = estimate_tokens(completion_chars);
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

/// About four characters per token: the usual rule of thumb for English text and code
/// with BPE tokenizers; good enough to keep token budgets moving.
fn estimate_tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}

fn finish_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::FunctionCall => "function_call",
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
