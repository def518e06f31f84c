use serde_json::{Value, json};

use super::*;
use crate::model::types::ChatMessage;

fn chunk(choices: Value, usage: Value) -> CreateChatCompletionStreamResponse {
    serde_json::from_value(json!({
        "id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": choices, "usage": usage
    }))
    .unwrap()
}

fn delta(delta: Value, finish_reason: Option<&str>) -> CreateChatCompletionStreamResponse {
    chunk(
        json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}]),
        Value::Null,
    )
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user("x".repeat(400))],
        tools: Vec::new(),
    }
}

#[test]
fn text_deltas_are_returned_and_accumulated() {
    let mut assembler = StreamAssembler::default();
    assert_eq!(
        assembler.push(delta(json!({"role": "assistant", "content": ""}), None)),
        None
    );
    assert_eq!(
        assembler.push(delta(json!({"content": "ab"}), None)),
        Some("ab".into())
    );
    assert_eq!(
        assembler.push(delta(json!({"content": "c"}), Some("stop"))),
        Some("c".into())
    );
    let response = assembler.finish(&request(), 1);
    assert_eq!(response.content.as_deref(), Some("abc"));
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
}

#[test]
fn stream_without_finish_reason_is_not_finished() {
    let mut assembler = StreamAssembler::default();
    assembler.push(delta(json!({"content": "partial"}), None));
    assert!(!assembler.is_finished());
    assembler.push(delta(json!({}), Some("length")));
    assert!(assembler.is_finished());
}

#[test]
fn repeated_ids_and_names_are_not_doubled_and_split_names_are_joined() {
    let mut assembler = StreamAssembler::default();
    let call = |id: &str, name: &str, args: &str| {
        delta(
            json!({"tool_calls": [{"index": 0, "id": id, "function": {"name": name, "arguments": args}}]}),
            None,
        )
    };
    assembler.push(call("call_1", "read_", "{\"a\""));
    assembler.push(call("call_1", "file", ":1}"));
    assembler.push(call("call_1", "read_file", ""));
    assembler.push(delta(json!({}), Some("tool_calls")));
    let response = assembler.finish(&request(), 1);
    assert_eq!(
        response.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "read_file".into(),
            arguments: "{\"a\":1}".into(),
        }]
    );
}

#[test]
fn tool_calls_are_ordered_by_index_whatever_the_arrival_order() {
    let mut assembler = StreamAssembler::default();
    for index in [2, 0, 1] {
        assembler.push(delta(
            json!({"tool_calls": [{"index": index, "id": format!("id{index}"), "function": {"name": "t", "arguments": "{}"}}]}),
            None,
        ));
    }
    assembler.push(delta(json!({}), Some("tool_calls")));
    let ids: Vec<String> = assembler
        .finish(&request(), 1)
        .tool_calls
        .into_iter()
        .map(|call| call.id)
        .collect();
    assert_eq!(ids, ["id0", "id1", "id2"]);
}

#[test]
fn missing_ids_get_a_stand_in_and_empty_arguments_become_an_empty_object() {
    let mut assembler = StreamAssembler::default();
    assembler.push(delta(
        json!({"tool_calls": [{"index": 3, "function": {"name": "list_directory"}}]}),
        Some("tool_calls"),
    ));
    let response = assembler.finish(&request(), 1);
    assert_eq!(response.tool_calls[0].id, "call_3");
    assert_eq!(response.tool_calls[0].arguments, "{}");
}

#[test]
fn choices_other_than_the_first_are_ignored() {
    let mut assembler = StreamAssembler::default();
    let text = assembler.push(chunk(
        json!([{"index": 1, "delta": {"content": "other"}, "finish_reason": "stop"}]),
        Value::Null,
    ));
    assert_eq!(text, None);
    assert!(!assembler.is_finished());
}

#[test]
fn server_usage_is_used_when_sent() {
    let mut assembler = StreamAssembler::default();
    assembler.push(delta(json!({"content": "hi"}), Some("stop")));
    assembler.push(chunk(
        json!([]),
        json!({"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}),
    ));
    let response = assembler.finish(&request(), 2);
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 7,
            completion_tokens: 1,
            total_tokens: 8
        }
    );
    assert!(!response.usage_estimated);
    assert_eq!(response.attempts, 2);
}

#[test]
fn usage_is_estimated_at_four_characters_per_token_when_absent() {
    let mut assembler = StreamAssembler::default();
    assembler.push(delta(json!({"content": "12345678"}), Some("stop")));
    let response = assembler.finish(&request(), 1);
    assert!(response.usage_estimated);
    assert_eq!(response.usage.completion_tokens, 2);
    // 400 characters of text plus the JSON around it.
    assert!(
        (100..=120).contains(&response.usage.prompt_tokens),
        "{:?}",
        response.usage
    );
    assert_eq!(
        response.usage.total_tokens,
        response.usage.prompt_tokens + 2
    );
}
