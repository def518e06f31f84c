//! Tool calls written as text, for models and servers without native tool calling.
//!
//! The format is the one most open models were trained on (Hermes, Qwen, and the chat
//! templates of llama.cpp, vLLM and Ollama use it): each call is a JSON object in its own
//! block,
//!
//! ```text
//! <tool_call>
//! {"name": "read_file_content", "arguments": {"file_path": "src/lib.rs"}}
//! </tool_call>
//! ```
//!
//! and results come back in `<tool_response>` blocks. With `tool_calling = "text"` the
//! tools are described in the system message, no `tools` parameter is sent, earlier calls
//! are replayed as those blocks and their results as a user message. In either mode an
//! answer with no native tool call whose text holds such blocks is read as calling them:
//! servers whose template does not parse the model's calls pass them on as text.

use serde::Serialize;
use serde_json::Value;

use super::types::{ChatMessage, ChatRequest, ToolCall};

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// What the system message gains in text mode: the format and every tool.
pub fn tool_instructions(tools: &[tools::ToolSpec]) -> String {
    let mut text = String::from(
        "\n\n## Calling tools\n\
         You call a tool by writing a block like this in your reply, one block per call \
         (several blocks call several tools):\n\n\
         <tool_call>\n{\"name\": \"TOOL_NAME\", \"arguments\": {\"ARGUMENT\": \"VALUE\"}}\n</tool_call>\n\n\
         Each result comes back in a <tool_response> block. When the task is done, reply \
         without any <tool_call> block.\n\n\
         The tools (name, what it does, JSON Schema of its arguments):\n",
    );
    for spec in tools {
        let line = serde_json::json!({
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

/// One message of a text-mode conversation.
#[derive(Debug, Serialize, PartialEq)]
pub(super) struct TextMessage {
    role: &'static str,
    content: String,
}

/// The conversation with tool calls and results rewritten as text.
pub(super) fn text_messages(request: &ChatRequest<'_>) -> Vec<TextMessage> {
    let mut out: Vec<TextMessage> = Vec::with_capacity(request.messages.len());
    let mut instructions_added = false;
    for message in request.messages {
        match message {
            ChatMessage::System { content } => {
                let mut content = content.clone();
                if !instructions_added {
                    content.push_str(&tool_instructions(request.tools));
                    instructions_added = true;
                }
                out.push(TextMessage {
                    role: "system",
                    content,
                });
            }
            ChatMessage::User { content } => push_user(&mut out, content.clone()),
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => {
                let mut text = content.clone().unwrap_or_default();
                for call in tool_calls {
                    text.push_str(&render_call(call));
                }
                out.push(TextMessage {
                    role: "assistant",
                    content: text,
                });
            }
            ChatMessage::Tool { content, .. } => {
                push_user(
                    &mut out,
                    format!("<tool_response>\n{content}\n</tool_response>"),
                );
            }
        }
    }
    out
}

/// Appends a user message, joined to a user message right before it (chat templates that
/// insist on alternating roles reject two in a row).
fn push_user(out: &mut Vec<TextMessage>, content: String) {
    match out.last_mut() {
        Some(last) if last.role == "user" => {
            last.content.push_str("\n\n");
            last.content.push_str(&content);
        }
        _ => out.push(TextMessage {
            role: "user",
            content,
        }),
    }
}

fn render_call(call: &ToolCall) -> String {
    let arguments: Value = serde_json::from_str(&call.arguments)
        .unwrap_or_else(|_| Value::from(call.arguments.clone()));
    let block = serde_json::json!({"name": call.name, "arguments": arguments});
    format!("\n{OPEN}\n{block}\n{CLOSE}")
}

/// A call found in the text: its name and its arguments as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TextCall {
    pub(super) name: String,
    pub(super) arguments: String,
}

/// The `<tool_call>` blocks in `content`, and the text around them (`None` when only
/// blocks were written). `None` overall when there is no well-formed block.
pub(super) fn extract_calls(content: &str) -> Option<(Option<String>, Vec<TextCall>)> {
    if !content.contains(OPEN) {
        return None;
    }
    let mut calls = Vec::new();
    let mut rest = String::new();
    let mut remaining = content;
    while let Some(start) = remaining.find(OPEN) {
        rest.push_str(&remaining[..start]);
        let after = &remaining[start + OPEN.len()..];
        let (inner, next) = match after.find(CLOSE) {
            Some(end) => (&after[..end], &after[end + CLOSE.len()..]),
            // A model cut off by its stop sequence may omit the closing tag.
            None => (after, ""),
        };
        match parse_block(inner) {
            Some(call) => calls.push(call),
            None => {
                rest.push_str(OPEN);
                rest.push_str(inner);
            }
        }
        remaining = next;
    }
    rest.push_str(remaining);
    if calls.is_empty() {
        return None;
    }
    let rest = rest.trim();
    Some(((!rest.is_empty()).then(|| rest.to_string()), calls))
}

fn parse_block(inner: &str) -> Option<TextCall> {
    let text = inner.trim();
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .map_or(text, |t| t.trim_end().trim_end_matches("```"))
        .trim();
    let value: Value = serde_json::from_str(text).ok()?;
    let name = value.get("name")?.as_str()?.trim().to_string();
    if name.is_empty() {
        return None;
    }
    let arguments = match value.get("arguments").or_else(|| value.get("parameters")) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => "{}".to_string(),
    };
    Some(TextCall { name, arguments })
}

#[cfg(test)]
#[path = "text_tools_tests.rs"]
mod tests;
