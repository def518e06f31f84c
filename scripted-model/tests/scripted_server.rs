//! The scripted model server over real HTTP: the wire shapes the agent's client reads,
//! every step kind, and the request record tests rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_openai::types::chat::{ChatCompletionMessageToolCalls, CreateChatCompletionResponse};
use async_openai::types::models::ListModelResponse;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{assemble, chat_request, client, post_chat, read_sse, serve};

fn two_calls_script() -> Value {
    json!({"steps": [{
        "type": "tool_calls",
        "content": "Reading both files.",
        "calls": [
            {"name": "read_file_content", "arguments": {"path": "src/lib.rs", "start_line": 10}},
            {"name": "search_code", "arguments": {"pattern": "fn main", "path": "."}}
        ]
    }]})
}

#[tokio::test]
async fn non_streaming_tool_calls_have_the_chat_completion_shape() {
    let server = serve(two_calls_script()).await;
    let response = post_chat(&server.base_url(), &chat_request(false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();

    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "scripted");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Reading both files.");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "call_1");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "read_file_content");
    let arguments: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"path": "src/lib.rs", "start_line": 10}));
    assert_eq!(calls[1]["id"], "call_2");
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn non_streaming_responses_deserialize_with_async_openai() {
    let mut script = two_calls_script();
    script["steps"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "message", "content": "All done.",
                     "usage": {"prompt_tokens": 50, "completion_tokens": 3}}));
    let server = serve(script).await;

    let first: CreateChatCompletionResponse = post_chat(&server.base_url(), &chat_request(false))
        .await
        .json()
        .await
        .unwrap();
    let calls = first.choices[0].message.tool_calls.as_ref().unwrap();
    let ChatCompletionMessageToolCalls::Function(call) = &calls[1] else {
        panic!("expected a function tool call, got {calls:?}");
    };
    assert_eq!(call.id, "call_2");
    assert_eq!(call.function.name, "search_code");

    let second: CreateChatCompletionResponse = post_chat(&server.base_url(), &chat_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second.choices[0].message.content.as_deref(),
        Some("All done.")
    );
    assert!(second.choices[0].message.tool_calls.is_none());
    let usage = second.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (50, 3, 53)
    );
}

#[tokio::test]
async fn streamed_tool_calls_reassemble_into_the_scripted_calls() {
    let server = serve(two_calls_script()).await;
    let read = read_sse(post_chat(&server.base_url(), &chat_request(true)).await).await;
    assert!(read.end.is_ok(), "{:?}", read.end);
    let assembled = assemble(&read.chunks());

    assert!(assembled.role_seen);
    assert_eq!(assembled.content, "Reading both files.");
    assert_eq!(assembled.finish_reason.as_deref(), Some("tool_calls"));
    let first = &assembled.calls[&0];
    assert_eq!(
        (first.id.as_str(), first.name.as_str()),
        ("call_1", "read_file_content")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&first.arguments).unwrap(),
        json!({"path": "src/lib.rs", "start_line": 10})
    );
    let second = &assembled.calls[&1];
    assert_eq!(
        (second.id.as_str(), second.name.as_str()),
        ("call_2", "search_code")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&second.arguments).unwrap(),
        json!({"pattern": "fn main", "path": "."})
    );
}

#[tokio::test]
async fn streamed_arguments_arrive_in_pieces_with_calls_interleaved() {
    let server = serve(two_calls_script()).await;
    let read = read_sse(post_chat(&server.base_url(), &chat_request(true)).await).await;
    let assembled = assemble(&read.chunks());

    assert!(
        assembled.argument_deltas.values().all(|&deltas| deltas > 1),
        "{assembled:?}"
    );
    let first_of_call_1 = assembled.index_order.iter().position(|&i| i == 1).unwrap();
    let last_of_call_0 = assembled.index_order.iter().rposition(|&i| i == 0).unwrap();
    assert!(
        first_of_call_1 < last_of_call_0,
        "deltas of the two calls should interleave: {:?}",
        assembled.index_order
    );
}

#[tokio::test]
async fn streamed_message_comes_in_several_chunks_and_ends_with_done() {
    let server = serve(json!({"steps": [
        {"type": "message", "content": "The test passes now; the off-by-one is fixed."}
    ]}))
    .await;
    let response = post_chat(&server.base_url(), &chat_request(true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let read = read_sse(response).await;

    assert!(read.end.is_ok(), "{:?}", read.end);
    assert_eq!(read.data.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(read.data.iter().filter(|d| *d == "[DONE]").count(), 1);
    let chunks = read.chunks();
    let content_chunks = chunks
        .iter()
        .filter(|c| {
            c.choices
                .iter()
                .any(|ch| ch.delta.content.as_deref().is_some_and(|t| !t.is_empty()))
        })
        .count();
    assert!(
        content_chunks > 1,
        "content came in {content_chunks} chunk(s)"
    );
    let assembled = assemble(&chunks);
    assert_eq!(
        assembled.content,
        "The test passes now; the off-by-one is fixed."
    );
    assert_eq!(assembled.finish_reason.as_deref(), Some("stop"));
    assert!(chunks.iter().all(|c| c.id == chunks[0].id));
}

#[tokio::test]
async fn stream_reports_usage_in_a_last_chunk_only_when_asked() {
    let server = serve(json!({"steps": [
        {"type": "message", "content": "one", "usage": {"prompt_tokens": 7, "completion_tokens": 1}},
        {"type": "message", "content": "two"}
    ]}))
    .await;
    let mut with_usage = chat_request(true);
    with_usage["stream_options"] = json!({"include_usage": true});
    let read = read_sse(post_chat(&server.base_url(), &with_usage).await).await;
    let chunks = read.chunks();
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    let usage = last.usage.as_ref().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (7, 1, 8)
    );
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.usage.is_none()));

    let read = read_sse(post_chat(&server.base_url(), &chat_request(true)).await).await;
    assert!(read.chunks().iter().all(|c| c.usage.is_none()));
    assert!(read.saw_done());
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_body_path_and_authorization() {
    let server = serve(json!({"steps": [
        {"type": "message", "content": "a"},
        {"type": "message", "content": "b"}
    ]}))
    .await;
    let url = server.base_url();
    let mut first = chat_request(false);
    first["messages"][0]["content"] = json!("first question");
    let mut second = chat_request(true);
    second["messages"][0]["content"] = json!("second question");
    post_chat(&url, &first).await.bytes().await.unwrap();
    post_chat(&url, &second).await.bytes().await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, first);
    assert_eq!(requests[1].body, second);
    assert_eq!(requests[0].step, Some(0));
    assert_eq!(requests[1].step, Some(1));
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.authorization.as_deref(), Some("Bearer sk-test-key"));
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert!(request.received_at_ms > 0);
    }
    assert!(requests[0].received_at_ms <= requests[1].received_at_ms);
}

#[tokio::test]
async fn request_without_a_key_is_recorded_without_authorization() {
    let server = serve(json!({"steps": [{"type": "message", "content": "a"}]})).await;
    client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&chat_request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(server.requests()[0].authorization, None);
}

#[tokio::test]
async fn models_lists_the_script_model() {
    let server = serve(json!({"model": "qwen-scripted", "steps": []})).await;
    let response = client()
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let models: ListModelResponse = response.json().await.unwrap();
    assert_eq!(models.object, "list");
    assert_eq!(models.data.len(), 1);
    assert_eq!(models.data[0].id, "qwen-scripted");
    assert_eq!(server.steps_consumed(), 0);
}

#[tokio::test]
async fn control_endpoints_report_requests_and_progress() {
    let server = serve(json!({"steps": [
        {"type": "message", "content": "a"},
        {"type": "message", "content": "b"}
    ]}))
    .await;
    post_chat(&server.base_url(), &chat_request(false))
        .await
        .bytes()
        .await
        .unwrap();
    let root = format!("http://{}", server.local_addr());

    let status: Value = client()
        .get(format!("{root}/_scripted/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status, json!({"consumed": 1, "total": 2}));

    let recorded: Vec<scripted_model::RecordedRequest> = client()
        .get(format!("{root}/_scripted/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded, server.requests());
    assert_eq!(recorded.len(), 1, "control requests are not recorded");
}

#[tokio::test]
async fn tool_call_ids_stay_unique_across_steps() {
    let call = json!({"type": "tool_calls", "calls": [{"name": "list_directory"}]});
    let server = serve(json!({"steps": [call.clone(), call]})).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response: CreateChatCompletionResponse =
            post_chat(&server.base_url(), &chat_request(false))
                .await
                .json()
                .await
                .unwrap();
        let calls = response.choices[0].message.tool_calls.clone().unwrap();
        let ChatCompletionMessageToolCalls::Function(call) = &calls[0] else {
            panic!("expected a function call");
        };
        assert_eq!(call.function.arguments, "{}");
        ids.push(call.id.clone());
    }
    assert_eq!(ids, vec!["call_1", "call_2"]);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let server = serve(json!({"steps": []})).await;
    let url = server.base_url();
    server.shutdown().await.unwrap();
    assert!(client().get(format!("{url}/models")).send().await.is_err());
}
