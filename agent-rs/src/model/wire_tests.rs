use serde_json::{Value, json};

use super::*;
use crate::model::types::ToolCall;

fn wire_json(settings: &ModelSettings, request: &ChatRequest) -> Value {
    serde_json::to_value(chat_completion_request(settings, request)).unwrap()
}

fn settings() -> ModelSettings {
    ModelSettings::new("http://127.0.0.1:1/v1", "qwen")
}

#[test]
fn every_turn_is_streamed_with_usage_requested() {
    let body = wire_json(&settings(), &ChatRequest::default());
    assert_eq!(body["model"], "qwen");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[test]
fn tools_and_tool_choice_are_left_out_when_there_are_no_tools() {
    let body = wire_json(&settings(), &ChatRequest::default());
    assert!(body.get("tools").is_none(), "{body}");
    assert!(body.get("tool_choice").is_none(), "{body}");
}

#[test]
fn tool_specs_become_function_tools_with_auto_choice() {
    let request = ChatRequest {
        messages: Vec::new(),
        tools: vec![tools::ToolSpec {
            name: "shell".into(),
            description: "Runs a command.".into(),
            parameters: json!({"type": "object"}),
        }],
    };
    let body = wire_json(&settings(), &request);
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "shell", "description": "Runs a command.", "parameters": {"type": "object"}
        }}])
    );
    assert_eq!(body["tool_choice"], "auto");
}

#[test]
fn sampling_settings_are_sent_only_when_set() {
    let body = wire_json(&settings(), &ChatRequest::default());
    assert!(body.get("temperature").is_none());
    assert!(body.get("max_tokens").is_none());

    let tuned = ModelSettings {
        temperature: Some(0.5),
        max_output_tokens: Some(512),
        ..settings()
    };
    let body = wire_json(&tuned, &ChatRequest::default());
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["max_tokens"], 512);
}

#[test]
fn messages_map_to_their_roles() {
    let request = ChatRequest {
        messages: vec![
            ChatMessage::system("sys"),
            ChatMessage::user("do it"),
            ChatMessage::Assistant {
                content: Some("calling".into()),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path":"a"}"#.into(),
                }],
            },
            ChatMessage::tool_result("call_1", "contents"),
        ],
        tools: Vec::new(),
    };
    let body = wire_json(&settings(), &request);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "do it"},
            {"role": "assistant", "content": "calling", "tool_calls": [
                {"type": "function", "id": "call_1",
                 "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}}
            ]},
            {"role": "tool", "content": "contents", "tool_call_id": "call_1"},
        ])
    );
}

#[test]
fn assistant_tool_calls_without_text_send_no_content() {
    let request = ChatRequest {
        messages: vec![ChatMessage::Assistant {
            content: None,
            tool_calls: vec![ToolCall {
                id: "c".into(),
                name: "t".into(),
                arguments: "{}".into(),
            }],
        }],
        tools: Vec::new(),
    };
    let message = &wire_json(&settings(), &request)["messages"][0];
    assert!(message.get("content").is_none(), "{message}");
}

#[test]
fn an_empty_assistant_message_is_sent_with_empty_text_and_no_tool_calls() {
    let request = ChatRequest {
        messages: vec![ChatMessage::Assistant {
            content: None,
            tool_calls: Vec::new(),
        }],
        tools: Vec::new(),
    };
    let message = &wire_json(&settings(), &request)["messages"][0];
    assert_eq!(message, &json!({"role": "assistant", "content": ""}));
}

#[test]
fn chat_messages_round_trip_in_the_role_tagged_shape() {
    let message = ChatMessage::Assistant {
        content: None,
        tool_calls: vec![ToolCall {
            id: "c".into(),
            name: "t".into(),
            arguments: "{}".into(),
        }],
    };
    let value = serde_json::to_value(&message).unwrap();
    assert_eq!(value["role"], "assistant");
    let back: ChatMessage = serde_json::from_value(value).unwrap();
    assert_eq!(back, message);
    let user: ChatMessage =
        serde_json::from_value(json!({"role": "user", "content": "hi"})).unwrap();
    assert_eq!(user, ChatMessage::user("hi"));
}
