//! The model client against a local HTTP server that plays hand-written Chat Completions
//! answers: streams, tool-call deltas, failures and broken connections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "model_client/failing.rs"]
mod failing;
#[path = "model_client/recorded.rs"]
mod recorded;
#[path = "model_client/retrying.rs"]
mod retrying;
#[path = "model_client/server.rs"]
mod server;
#[path = "model_client/streaming.rs"]
mod streaming;
#[path = "model_client/strict_schemas.rs"]
mod strict_schemas;

use std::sync::LazyLock;
use std::time::Duration;

use agent_rs::model::{
    ChatMessage, ChatRequest, ModelClient, ModelError, ModelEvent, ModelResponse,
};
use serde_json::json;

static MESSAGES: LazyLock<Vec<ChatMessage>> = LazyLock::new(|| {
    vec![
        ChatMessage::system("You are a coding agent."),
        ChatMessage::user("Fix the failing test."),
    ]
});

static TOOLS: LazyLock<Vec<tools::ToolSpec>> = LazyLock::new(|| {
    vec![tools::ToolSpec {
        name: "read_file".into(),
        description: "Reads a file.".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    }]
});

pub fn request() -> ChatRequest<'static> {
    ChatRequest {
        messages: &MESSAGES,
        tools: &TOOLS,
    }
}

pub async fn complete(
    client: &ModelClient,
) -> (Result<ModelResponse, ModelError>, Vec<ModelEvent>) {
    let mut events = Vec::new();
    let result = client
        .complete(&request(), &mut |event| events.push(event))
        .await;
    (result, events)
}

pub fn deltas(events: &[ModelEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::ContentDelta(text) => Some(text.as_str()),
            ModelEvent::Retrying { .. } => None,
        })
        .collect()
}

pub fn retries(events: &[ModelEvent]) -> Vec<(u32, String, Duration)> {
    events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::Retrying {
                attempt,
                reason,
                wait,
            } => Some((*attempt, reason.clone(), *wait)),
            ModelEvent::ContentDelta(_) => None,
        })
        .collect()
}
