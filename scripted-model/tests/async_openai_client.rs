//! The agent's own client library against the scripted server: if async-openai can
//! read it, the agent can. Covers the calls the agent makes (`create`, `create_stream`)
//! and the failures it must tell apart (API errors with status, broken streams).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestUserMessageArgs,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    FinishReason,
};
use futures_util::StreamExt;
use serde_json::{Value, json};

use scripted_model::{Script, ScriptedServer};

async fn serve(script: Value) -> (ScriptedServer, Client<OpenAIConfig>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = ScriptedServer::start(Script::from_value(script).unwrap())
        .await
        .unwrap();
    let config = OpenAIConfig::new()
        .with_api_base(server.base_url())
        .with_api_key("sk-scripted-test");
    (server, Client::with_config(config))
}

fn request(include_usage: bool) -> CreateChatCompletionRequest {
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model("scripted")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("list the files")
            .build()
            .unwrap()
            .into()]);
    if include_usage {
        args.stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
    }
    args.build().unwrap()
}

fn tool_calls_step() -> Value {
    json!({"type": "tool_calls", "calls": [
        {"name": "list_directory", "arguments": {"path": "src"}},
        {"name": "read_file_content", "arguments": {"path": "Cargo.toml"}}
    ]})
}

#[tokio::test]
async fn create_returns_the_scripted_tool_calls_and_sends_the_key() {
    let (server, client) = serve(json!({"steps": [tool_calls_step()]})).await;
    let response = client.chat().create(request(false)).await.unwrap();

    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls: Vec<(String, String)> = choice
        .message
        .tool_calls
        .iter()
        .flatten()
        .map(|call| match call {
            ChatCompletionMessageToolCalls::Function(call) => {
                (call.function.name.clone(), call.function.arguments.clone())
            }
            other => panic!("expected function calls, got {other:?}"),
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            ("list_directory".to_owned(), r#"{"path":"src"}"#.to_owned()),
            (
                "read_file_content".to_owned(),
                r#"{"path":"Cargo.toml"}"#.to_owned()
            ),
        ]
    );
    assert!(response.usage.is_some());
    assert_eq!(
        server.requests()[0].authorization.as_deref(),
        Some("Bearer sk-scripted-test")
    );
}

#[tokio::test]
async fn create_stream_assembles_to_the_scripted_tool_calls_with_usage() {
    let (server, client) = serve(json!({"steps": [tool_calls_step()]})).await;
    let mut stream = client.chat().create_stream(request(true)).await.unwrap();
    let mut arguments: BTreeMap<u32, (String, String)> = BTreeMap::new();
    let mut finish = None;
    let mut usage = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        usage = usage.or(chunk.usage);
        for choice in chunk.choices {
            finish = finish.or(choice.finish_reason);
            for call in choice.delta.tool_calls.into_iter().flatten() {
                let entry = arguments.entry(call.index).or_default();
                if let Some(function) = call.function {
                    entry.0.push_str(&function.name.unwrap_or_default());
                    entry.1.push_str(&function.arguments.unwrap_or_default());
                }
            }
        }
    }
    assert_eq!(finish, Some(FinishReason::ToolCalls));
    assert_eq!(
        arguments[&0],
        ("list_directory".into(), r#"{"path":"src"}"#.into())
    );
    assert_eq!(
        arguments[&1],
        (
            "read_file_content".into(),
            r#"{"path":"Cargo.toml"}"#.into()
        )
    );
    let usage = usage.unwrap();
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    assert_eq!(server.requests()[0].body["stream"], true);
}

#[tokio::test]
async fn client_retries_a_rate_limit_after_retry_after_and_gets_the_next_step() {
    // async-openai's default client retries 429 and 5xx itself, honouring Retry-After:
    // each retry consumes a step, as it would spend a request against a real provider.
    let (server, client) = serve(json!({"steps": [
        {"type": "error", "status": 429, "retry_after_secs": 0},
        {"type": "message", "content": "after the retry"}
    ]}))
    .await;
    let response = client.chat().create(request(false)).await.unwrap();
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some("after the retry")
    );
    assert_eq!(server.steps_consumed(), 2);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn auth_error_reaches_the_client_as_an_api_error_with_status() {
    let (server, client) = serve(json!({"steps": [{"type": "error", "status": 401}]})).await;
    let Err(error) = client.chat().create_stream(request(false)).await else {
        panic!("expected the stream request to fail");
    };
    let OpenAIError::ApiError(api) = error else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(api.status_code.as_u16(), 401);
    assert_eq!(api.api_error.code.as_deref(), Some("invalid_api_key"));
    assert_eq!(server.requests().len(), 1, "401 is not retried");
}

#[tokio::test]
async fn insufficient_quota_body_makes_a_429_final() {
    let (server, client) = serve(json!({"steps": [
        {"type": "error", "status": 429, "body": {"error": {
            "message": "You exceeded your current quota.", "type": "insufficient_quota",
            "param": null, "code": "insufficient_quota"}}}
    ]}))
    .await;
    let error = client.chat().create(request(false)).await.unwrap_err();
    let OpenAIError::ApiError(api) = error else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(api.status_code.as_u16(), 429);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn cut_stream_reaches_the_client_as_a_stream_error() {
    let (_server, client) =
        serve(json!({"steps": [{"type": "cut_stream", "content": "Half an"}]})).await;
    let mut stream = client.chat().create_stream(request(false)).await.unwrap();
    let mut content = String::new();
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                for choice in chunk.choices {
                    content.push_str(&choice.delta.content.unwrap_or_default());
                }
            }
            Err(error) => failure = Some(error),
        }
    }
    assert_eq!(content, "Half an");
    assert!(
        matches!(failure, Some(OpenAIError::StreamError(_))),
        "expected a stream error, got {failure:?}"
    );
}

#[tokio::test]
async fn exhausted_script_reaches_the_client_as_a_server_error() {
    let (server, client) = serve(json!({"steps": []})).await;
    let error = client.chat().create(request(false)).await.unwrap_err();
    let OpenAIError::ApiError(api) = error else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(api.status_code.as_u16(), 500);
    assert!(
        api.api_error
            .message
            .contains("script exhausted after 0 steps"),
        "{}",
        api.api_error.message
    );
    // The client's own retries of the 500 are recorded too.
    assert!(server.requests().len() > 1);
    assert!(server.requests().iter().all(|r| r.step.is_none()));
}
