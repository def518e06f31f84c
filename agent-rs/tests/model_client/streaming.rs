//! Successful turns: how streamed text, tool calls and usage are put together, and what
//! the request looks like.

use agent_rs::model::{ModelClient, ModelSettings, ToolCall, Usage};
use serde_json::json;

use super::server::{API_KEY, Ending, Reply, TestServer, chunk, text_answer, usage_chunk};
use super::{complete, deltas};

#[tokio::test]
async fn parallel_tool_calls_split_across_chunks_are_assembled_by_index() {
    let call = |index: u32, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut function = json!({"arguments": args});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut delta = json!({"index": index, "function": function});
        if let Some(id) = id {
            delta["id"] = json!(id);
            delta["type"] = json!("function");
        }
        delta
    };
    let server = TestServer::start(vec![Reply::Sse {
        events: vec![
            chunk(json!({"role": "assistant", "content": null}), None),
            chunk(
                json!({"tool_calls": [call(0, Some("call_a"), Some("read_file"), "")]}),
                None,
            ),
            chunk(json!({"tool_calls": [call(0, None, None, "{\"pa")]}), None),
            chunk(
                json!({"tool_calls": [call(1, Some("call_b"), Some("search"), "{\"q\":")]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [call(0, None, None, "th\":\"a.rs\"}")]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [call(1, None, None, "\"fn main\"}")]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(120, 30),
        ],
        ending: Ending::Done,
    }])
    .await;

    let (result, events) = complete(&server.client()).await;
    let response = result.unwrap();

    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "read_file".into(),
                arguments: r#"{"path":"a.rs"}"#.into(),
            },
            ToolCall {
                id: "call_b".into(),
                name: "search".into(),
                arguments: r#"{"q":"fn main"}"#.into(),
            },
        ]
    );
    assert_eq!(response.content, None);
    assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 120,
            completion_tokens: 30,
            total_tokens: 150
        }
    );
    assert!(!response.usage_estimated);
    assert_eq!(response.attempts, 1);
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test]
async fn content_deltas_are_passed_on_in_order_and_concatenated() {
    let server = TestServer::start(vec![Reply::Sse {
        events: vec![
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": "lo, "}), None),
            chunk(json!({"content": "world"}), None),
            chunk(json!({}), Some("stop")),
            usage_chunk(5, 3),
        ],
        ending: Ending::Done,
    }])
    .await;

    let (result, events) = complete(&server.client()).await;
    let response = result.unwrap();

    assert_eq!(deltas(&events), vec!["Hel", "lo, ", "world"]);
    assert_eq!(response.content.as_deref(), Some("Hello, world"));
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert!(response.tool_calls.is_empty());
}

#[tokio::test]
async fn request_is_streamed_with_usage_tools_as_functions_and_the_bearer_key() {
    let server = TestServer::start(vec![text_answer("ok")]).await;
    complete(&server.client()).await.0.unwrap();

    let (authorization, body) = server.request(0);
    assert_eq!(authorization, Some(format!("Bearer {API_KEY}")));
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "read_file");
    assert_eq!(body["tools"][0]["function"]["description"], "Reads a file.");
    assert_eq!(
        body["tools"][0]["function"]["parameters"]["properties"]["path"]["type"],
        "string"
    );
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["messages"][1]["content"], "Fix the failing test.");
}

#[tokio::test]
async fn no_authorization_header_is_sent_without_a_key() {
    let server = TestServer::start(vec![text_answer("ok")]).await;
    let client = ModelClient::new(ModelSettings {
        api_key: None,
        ..server.settings()
    })
    .unwrap();
    complete(&client).await.0.unwrap();
    assert_eq!(server.request(0).0, None);
}

#[tokio::test]
async fn usage_is_estimated_and_flagged_when_the_server_sends_none() {
    let server = TestServer::start(vec![Reply::Sse {
        events: vec![
            chunk(json!({"content": "a reply of some length"}), None),
            chunk(json!({}), Some("stop")),
        ],
        ending: Ending::Done,
    }])
    .await;
    let response = complete(&server.client()).await.0.unwrap();
    assert!(response.usage_estimated);
    assert!(response.usage.prompt_tokens > 0);
    assert!(response.usage.completion_tokens > 0);
    assert_eq!(
        response.usage.total_tokens,
        response.usage.prompt_tokens + response.usage.completion_tokens
    );
}

#[tokio::test]
async fn a_turn_can_run_on_a_spawned_task_with_a_cloned_client() {
    let server = TestServer::start(vec![text_answer("from a task")]).await;
    let client = server.client();
    let task_client = client.clone();
    let response = tokio::spawn(async move {
        let mut deltas = Vec::new();
        task_client
            .complete(&super::request(), &mut |event| deltas.push(event))
            .await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.content.as_deref(), Some("from a task"));
}

/// A tool call whose arguments are megabytes long arrives whole, in time proportional to
/// its size: the old SSE decoder rescanned the pending line on every read, so a 20 MB
/// argument took about a minute in a release build (far longer here, past the test
/// runner's limit). `scripts/bench-stream` reports the receive times.
#[tokio::test]
async fn a_twenty_megabyte_tool_call_in_one_line_arrives_whole() {
    let content = "x".repeat(20 * 1024 * 1024);
    let arguments = json!({"path": "big.txt", "content": content}).to_string();
    let server = TestServer::start(vec![Reply::Sse {
        events: vec![
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_big", "type": "function",
                    "function": {"name": "write_file", "arguments": arguments}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
        ],
        ending: Ending::Done,
    }])
    .await;

    let (result, _) = complete(&server.client()).await;
    let response = result.unwrap();

    assert_eq!(response.tool_calls.len(), 1);
    assert_eq!(response.tool_calls[0].name, "write_file");
    assert_eq!(response.tool_calls[0].arguments.len(), arguments.len());
    assert!(response.tool_calls[0].arguments == arguments);
}
