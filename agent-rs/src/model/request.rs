//! The JSON body of one streamed Chat Completions request.
//!
//! Serialised straight from the conversation by reference: nothing is copied into
//! intermediate request types, so a long conversation costs one pass of `serde_json`
//! per turn and no allocations beyond the body itself.
//!
//! Choices made for the widest server compatibility:
//! - `max_tokens` for most models, `max_completion_tokens` for the families that refuse
//!   the former (OpenAI's o-series and gpt-5), or as configured ([`TokenLimitField`]).
//! - `tools` and `tool_choice` are left out entirely when there are no tools (OpenAI
//!   rejects `tool_choice` without tools, and an empty `tools` array).
//! - An assistant message with neither text nor tool calls is sent with empty text:
//!   several servers reject a message without either.
//! - With [`ToolCalling::Text`] no `tools` are sent at all: the tools are described in
//!   the system message and earlier calls and results travel as text (`text_tools.rs`).

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::schema::portable_schema;
use super::settings::{ModelSettings, ToolCalling};
use super::text_tools;
use super::types::{ChatMessage, ChatRequest, ToolCall};

/// The request body for one turn. `portable_schemas` selects the schema dialect.
pub(super) fn request_body(
    settings: &ModelSettings,
    request: &ChatRequest<'_>,
    portable_schemas: bool,
) -> Vec<u8> {
    let text_tools = settings.tool_calling == ToolCalling::Text && !request.tools.is_empty();
    let native_tools = !text_tools && !request.tools.is_empty();
    let (max_tokens, max_completion_tokens) = match settings.uses_max_completion_tokens() {
        true => (None, settings.max_output_tokens),
        false => (settings.max_output_tokens, None),
    };
    let body = Body {
        model: &settings.model,
        messages: Messages {
            request,
            text_tools,
        },
        stream: true,
        stream_options: settings.stream_usage.then_some(StreamOptions {
            include_usage: true,
        }),
        tools: native_tools.then_some(Tools {
            request,
            portable: portable_schemas,
        }),
        tool_choice: native_tools.then_some("auto"),
        temperature: settings.temperature,
        max_tokens,
        max_completion_tokens,
        reasoning_effort: settings.reasoning_effort.as_deref(),
    };
    // Serialising plain data into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Messages<'a>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Tools<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

struct Tools<'a> {
    request: &'a ChatRequest<'a>,
    portable: bool,
}

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.request.tools.len()))?;
        for spec in self.request.tools {
            let portable;
            let parameters = if self.portable {
                portable = portable_schema(&spec.parameters);
                &portable
            } else {
                &spec.parameters
            };
            seq.serialize_element(&WireTool {
                kind: "function",
                function: WireFunction {
                    name: &spec.name,
                    description: &spec.description,
                    parameters,
                },
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

struct Messages<'a> {
    request: &'a ChatRequest<'a>,
    text_tools: bool,
}

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.text_tools {
            return text_tools::text_messages(self.request).serialize(serializer);
        }
        let mut seq = serializer.serialize_seq(Some(self.request.messages.len()))?;
        for message in self.request.messages {
            seq.serialize_element(&WireMessage(message))?;
        }
        seq.end()
    }
}

/// One message in the API's shape.
pub(super) struct WireMessage<'a>(pub(super) &'a ChatMessage);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self.0 {
            ChatMessage::System { content } => {
                map.serialize_entry("role", "system")?;
                map.serialize_entry("content", content)?;
            }
            ChatMessage::User { content } => {
                map.serialize_entry("role", "user")?;
                map.serialize_entry("content", content)?;
            }
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => {
                map.serialize_entry("role", "assistant")?;
                match content {
                    Some(text) => map.serialize_entry("content", text)?,
                    None if tool_calls.is_empty() => map.serialize_entry("content", "")?,
                    None => {}
                }
                if !tool_calls.is_empty() {
                    map.serialize_entry("tool_calls", &WireToolCalls(tool_calls))?;
                }
            }
            ChatMessage::Tool {
                tool_call_id,
                content,
            } => {
                map.serialize_entry("role", "tool")?;
                map.serialize_entry("tool_call_id", tool_call_id)?;
                map.serialize_entry("content", content)?;
            }
        }
        map.end()
    }
}

struct WireToolCalls<'a>(&'a [ToolCall]);

impl Serialize for WireToolCalls<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Call<'a> {
            id: &'a str,
            #[serde(rename = "type")]
            kind: &'static str,
            function: Function<'a>,
        }
        #[derive(Serialize)]
        struct Function<'a> {
            name: &'a str,
            arguments: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|call| Call {
            id: &call.id,
            kind: "function",
            function: Function {
                name: &call.name,
                arguments: &call.arguments,
            },
        }))
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
