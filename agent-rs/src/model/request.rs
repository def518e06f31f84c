//! The JSON body of one streamed Chat Completions request.
//!
//! Serialised straight from the conversation by reference, nothing copied into
//! intermediate request types; and each message's JSON is kept between turns
//! ([`RequestCache`]), so a turn serialises only what is new and copies the rest.
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

/// The request body for one turn, serialised afresh (no cache): what the cached builder
/// must reproduce byte for byte.
#[cfg(test)]
pub(super) fn request_body(
    settings: &ModelSettings,
    request: &ChatRequest<'_>,
    portable_schemas: bool,
) -> Vec<u8> {
    let text_tools = settings.tool_calling == ToolCalling::Text && !request.tools.is_empty();
    let mut tools = ToolsCache::default();
    write_body(settings, request, portable_schemas, &mut tools, |body| {
        write_json(
            body,
            &Messages {
                request,
                text_tools,
            },
        );
    })
}

/// What is kept between turns to build the next body quickly: the tool definitions and
/// each message, serialised.
#[derive(Debug, Default)]
pub(super) struct RequestCache {
    tools: ToolsCache,
    messages: MessagesCache,
}

/// The `tools` array as last sent. The tool definitions are the same every turn and,
/// serialised, were a fifth of the loop's own CPU; they are written once and reused while
/// the specs and the dialect stay what they were.
#[derive(Debug, Default)]
struct ToolsCache {
    entry: Option<CachedTools>,
}

#[derive(Debug)]
struct CachedTools {
    specs: Vec<tools::ToolSpec>,
    portable: bool,
    json: Vec<u8>,
}

impl ToolsCache {
    /// The `tools` array for `specs` in the given dialect, serialised.
    fn json(&mut self, specs: &[tools::ToolSpec], portable: bool) -> &[u8] {
        let fresh = self
            .entry
            .as_ref()
            .is_some_and(|cached| cached.portable == portable && cached.specs == specs);
        if !fresh {
            let mut json = Vec::new();
            write_json(&mut json, &Tools { specs, portable });
            self.entry = Some(CachedTools {
                specs: specs.to_vec(),
                portable,
                json,
            });
        }
        self.entry
            .as_ref()
            .map_or(&b"[]"[..], |cached| cached.json.as_slice())
    }
}

/// Each message of the conversation as last sent, by position. A conversation only grows
/// between turns, so re-serialising all of it every turn (escaping every string again)
/// made the request the loop's largest cost, quadratic over a run. A message's JSON is
/// reused only when the message equals the one it was written from (a comparison of
/// bytes, far cheaper than escaping them), so a message changed in place (an old output
/// elided) or another conversation sent through the same client is written afresh.
#[derive(Debug, Default)]
struct MessagesCache {
    entries: Vec<CachedMessage>,
}

#[derive(Debug)]
struct CachedMessage {
    message: ChatMessage,
    json: Vec<u8>,
}

impl MessagesCache {
    /// Appends the `messages` array to `out`: `[`, each message's JSON joined by `,`,
    /// `]`, exactly as `serde_json` writes the sequence in one pass.
    fn write(&mut self, out: &mut Vec<u8>, messages: &[ChatMessage]) {
        self.entries.truncate(messages.len());
        for (index, message) in messages.iter().enumerate() {
            match self.entries.get_mut(index) {
                Some(cached) if cached.message == *message => {}
                Some(cached) => {
                    cached.json.clear();
                    write_json(&mut cached.json, &WireMessage(message));
                    cached.message.clone_from(message);
                }
                None => {
                    let mut json = Vec::new();
                    write_json(&mut json, &WireMessage(message));
                    self.entries.push(CachedMessage {
                        message: message.clone(),
                        json,
                    });
                }
            }
        }
        let size: usize = self.entries.iter().map(|e| e.json.len() + 1).sum();
        out.reserve(size + 1);
        out.push(b'[');
        for (index, cached) in self.entries.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&cached.json);
        }
        out.push(b']');
    }
}

/// The request body for one turn, the `tools` array and the messages from `cache`.
pub(super) fn request_body_cached(
    settings: &ModelSettings,
    request: &ChatRequest<'_>,
    portable_schemas: bool,
    cache: &mut RequestCache,
) -> Vec<u8> {
    let text_tools = settings.tool_calling == ToolCalling::Text && !request.tools.is_empty();
    let RequestCache { tools, messages } = cache;
    write_body(settings, request, portable_schemas, tools, |body| {
        if text_tools {
            // Rewritten every turn (the instructions join the system message, results
            // join user messages): a rare mode, serialised afresh.
            write_json(
                body,
                &Messages {
                    request,
                    text_tools,
                },
            );
        } else {
            messages.write(body, request.messages);
        }
    })
}

/// The request body, written field by field in the order the API documents; the
/// messages by `write_messages`.
fn write_body(
    settings: &ModelSettings,
    request: &ChatRequest<'_>,
    portable_schemas: bool,
    tools: &mut ToolsCache,
    write_messages: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let text_tools = settings.tool_calling == ToolCalling::Text && !request.tools.is_empty();
    let native_tools = !text_tools && !request.tools.is_empty();
    let (max_tokens, max_completion_tokens) = match settings.uses_max_completion_tokens() {
        true => (None, settings.max_output_tokens),
        false => (settings.max_output_tokens, None),
    };
    let mut body = Vec::with_capacity(4096);
    body.extend_from_slice(b"{\"model\":");
    write_json(&mut body, &settings.model);
    body.extend_from_slice(b",\"messages\":");
    write_messages(&mut body);
    body.extend_from_slice(b",\"stream\":true");
    if settings.stream_usage {
        body.extend_from_slice(b",\"stream_options\":{\"include_usage\":true}");
    }
    if native_tools {
        body.extend_from_slice(b",\"tools\":");
        body.extend_from_slice(tools.json(request.tools, portable_schemas));
        body.extend_from_slice(b",\"tool_choice\":\"auto\"");
    }
    write_field(&mut body, "temperature", settings.temperature);
    write_field(&mut body, "max_tokens", max_tokens);
    write_field(&mut body, "max_completion_tokens", max_completion_tokens);
    write_field(
        &mut body,
        "reasoning_effort",
        settings.reasoning_effort.as_deref(),
    );
    body.push(b'}');
    body
}

/// Appends `value` as JSON. Serialising plain data into a Vec cannot fail.
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Appends `,"name":value` when there is a value.
fn write_field<T: Serialize>(out: &mut Vec<u8>, name: &str, value: Option<T>) {
    if let Some(value) = value {
        out.push(b',');
        write_json(out, name);
        out.push(b':');
        write_json(out, &value);
    }
}

struct Tools<'a> {
    specs: &'a [tools::ToolSpec],
    portable: bool,
}

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.specs.len()))?;
        for spec in self.specs {
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
