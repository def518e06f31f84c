//! Client-side helpers shared by the scripted server tests: an HTTP client, an SSE
//! reader, and delta assembly done with async-openai's own stream types (the agent's
//! client), so every streamed test also checks that the chunks deserialize there.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use async_openai::types::chat::CreateChatCompletionStreamResponse;
use serde_json::{Value, json};

use scripted_model::{Script, ScriptedServer};

/// A server playing `script` (a JSON script value).
pub async fn serve(script: Value) -> ScriptedServer {
    ScriptedServer::start(Script::from_value(script).unwrap())
        .await
        .unwrap()
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

/// A minimal valid chat request.
pub fn chat_request(stream: bool) -> Value {
    json!({
        "model": "scripted",
        "messages": [{"role": "user", "content": "fix the failing test"}],
        "stream": stream,
    })
}

pub async fn post_chat(base_url: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{base_url}/chat/completions"))
        .bearer_auth("sk-test-key")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// What a streamed body delivered before it ended.
#[derive(Debug)]
pub struct SseRead {
    /// The `data:` payloads, `[DONE]` included when sent.
    pub data: Vec<String>,
    /// How the body ended: `Ok` for a clean end, `Err` for a broken connection.
    pub end: Result<(), reqwest::Error>,
}

impl SseRead {
    pub fn saw_done(&self) -> bool {
        self.data.iter().any(|data| data == "[DONE]")
    }

    /// Every payload but `[DONE]`, deserialized as the agent's client does.
    pub fn chunks(&self) -> Vec<CreateChatCompletionStreamResponse> {
        self.data
            .iter()
            .filter(|data| *data != "[DONE]")
            .map(|data| {
                serde_json::from_str(data).unwrap_or_else(|error| {
                    panic!("chunk does not deserialize with async-openai: {error}: {data}")
                })
            })
            .collect()
    }
}

/// Reads the whole SSE body, keeping the events received before any failure.
pub async fn read_sse(mut response: reqwest::Response) -> SseRead {
    let mut buffer = String::new();
    let end = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    let data = buffer
        .split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    SseRead { data, end }
}

/// A tool call put back together from its deltas.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AssembledCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// The assistant message put back together from stream chunks, the way a client does.
#[derive(Debug, Default)]
pub struct Assembled {
    pub role_seen: bool,
    pub content: String,
    pub calls: BTreeMap<u32, AssembledCall>,
    pub finish_reason: Option<String>,
    pub usage: Option<(u32, u32, u32)>,
    /// How many deltas carried argument text, per call index.
    pub argument_deltas: BTreeMap<u32, usize>,
    /// Call indexes in the order their deltas arrived.
    pub index_order: Vec<u32>,
}

pub fn assemble(chunks: &[CreateChatCompletionStreamResponse]) -> Assembled {
    let mut out = Assembled::default();
    for chunk in chunks {
        assert_eq!(chunk.object, "chat.completion.chunk");
        if let Some(usage) = &chunk.usage {
            out.usage = Some((
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens,
            ));
        }
        for choice in &chunk.choices {
            let delta = &choice.delta;
            out.role_seen |= delta.role.is_some();
            if let Some(text) = &delta.content {
                out.content.push_str(text);
            }
            for call in delta.tool_calls.iter().flatten() {
                out.index_order.push(call.index);
                let entry = out.calls.entry(call.index).or_default();
                if let Some(id) = &call.id {
                    entry.id.clone_from(id);
                }
                if let Some(function) = &call.function {
                    if let Some(name) = &function.name {
                        entry.name.push_str(name);
                    }
                    if let Some(arguments) = &function.arguments
                        && !arguments.is_empty()
                    {
                        entry.arguments.push_str(arguments);
                        *out.argument_deltas.entry(call.index).or_default() += 1;
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                out.finish_reason = Some(
                    serde_json::to_value(reason)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
    }
    out
}
