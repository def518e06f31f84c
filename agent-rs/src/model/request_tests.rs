use serde_json::{Value, json};

use super::*;
use crate::model::settings::{TokenLimitField, ToolCalling};

fn wire_json(settings: &ModelSettings, request: &ChatRequest<'_>) -> Value {
    serde_json::from_slice(&request_body(settings, request, false)).unwrap()
}

fn settings() -> ModelSettings {
    ModelSettings::new("http://127.0.0.1:1/v1", "qwen")
}

fn shell_tool(parameters: Value) -> Vec<tools::ToolSpec> {
    vec![tools::ToolSpec {
        name: "shell".into(),
        description: "Runs a command.".into(),
        parameters,
    }]
}

#[test]
fn every_turn_is_streamed_with_usage_requested() {
    let body = wire_json(&settings(), &ChatRequest::default());
    assert_eq!(body["model"], "qwen");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    let quiet = ModelSettings {
        stream_usage: false,
        ..settings()
    };
    assert!(
        wire_json(&quiet, &ChatRequest::default())
            .get("stream_options")
            .is_none()
    );
}

#[test]
fn tools_and_tool_choice_are_left_out_when_there_are_no_tools() {
    let body = wire_json(&settings(), &ChatRequest::default());
    assert!(body.get("tools").is_none(), "{body}");
    assert!(body.get("tool_choice").is_none(), "{body}");
}

#[test]
fn tool_specs_become_function_tools_with_auto_choice() {
    let tools = shell_tool(json!({"type": "object"}));
    let request = ChatRequest {
        messages: &[],
        tools: &tools,
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
fn portable_dialect_rewrites_the_parameters() {
    let tools = shell_tool(json!({"type": "object", "additionalProperties": false,
        "properties": {"n": {"type": "integer", "format": "uint64"}}}));
    let request = ChatRequest {
        messages: &[],
        tools: &tools,
    };
    let body: Value = serde_json::from_slice(&request_body(&settings(), &request, true)).unwrap();
    assert_eq!(
        body["tools"][0]["function"]["parameters"],
        json!({"type": "object", "properties": {"n": {"type": "integer"}}})
    );
}

#[test]
fn sampling_settings_are_sent_only_when_set() {
    let body = wire_json(&settings(), &ChatRequest::default());
    for field in [
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "reasoning_effort",
    ] {
        assert!(body.get(field).is_none(), "{field}: {body}");
    }
    let tuned = ModelSettings {
        temperature: Some(0.5),
        max_output_tokens: Some(512),
        reasoning_effort: Some("high".into()),
        ..settings()
    };
    let body = wire_json(&tuned, &ChatRequest::default());
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["max_tokens"], 512);
    assert_eq!(body["reasoning_effort"], "high");
    assert!(body.get("max_completion_tokens").is_none());
}

#[test]
fn reasoning_families_get_max_completion_tokens_instead_of_max_tokens() {
    let o_series = ModelSettings {
        model: "o4-mini".into(),
        max_output_tokens: Some(900),
        ..settings()
    };
    let body = wire_json(&o_series, &ChatRequest::default());
    assert_eq!(body["max_completion_tokens"], 900);
    assert!(body.get("max_tokens").is_none());
    let forced = ModelSettings {
        token_limit_field: TokenLimitField::MaxCompletionTokens,
        max_output_tokens: Some(10),
        ..settings()
    };
    assert_eq!(
        wire_json(&forced, &ChatRequest::default())["max_completion_tokens"],
        10
    );
}

#[test]
fn messages_map_to_their_roles() {
    let messages = vec![
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
    ];
    let request = ChatRequest {
        messages: &messages,
        tools: &[],
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
    let messages = vec![ChatMessage::Assistant {
        content: None,
        tool_calls: vec![ToolCall {
            id: "c".into(),
            name: "t".into(),
            arguments: "{}".into(),
        }],
    }];
    let request = ChatRequest {
        messages: &messages,
        tools: &[],
    };
    let message = &wire_json(&settings(), &request)["messages"][0];
    assert!(message.get("content").is_none(), "{message}");
}

#[test]
fn an_empty_assistant_message_is_sent_with_empty_text_and_no_tool_calls() {
    let messages = vec![ChatMessage::Assistant {
        content: None,
        tool_calls: Vec::new(),
    }];
    let request = ChatRequest {
        messages: &messages,
        tools: &[],
    };
    let message = &wire_json(&settings(), &request)["messages"][0];
    assert_eq!(message, &json!({"role": "assistant", "content": ""}));
}

#[test]
fn text_tool_calling_sends_no_tools_and_describes_them_in_the_system_message() {
    let tools = shell_tool(json!({"type": "object"}));
    let messages = vec![ChatMessage::system("sys"), ChatMessage::user("go")];
    let request = ChatRequest {
        messages: &messages,
        tools: &tools,
    };
    let text = ModelSettings {
        tool_calling: ToolCalling::Text,
        ..settings()
    };
    let body = wire_json(&text, &request);
    assert!(
        body.get("tools").is_none() && body.get("tool_choice").is_none(),
        "{body}"
    );
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("sys") && system.contains("<tool_call>") && system.contains("\"shell\""),
        "{system}"
    );
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

#[test]
fn the_cached_tools_array_is_the_one_serialised_afresh() {
    let tools = shell_tool(json!({"type": "object", "additionalProperties": false,
        "properties": {"n": {"type": "integer", "format": "uint64"}}}));
    let messages = [ChatMessage::user("hi")];
    let request = ChatRequest {
        messages: &messages,
        tools: &tools,
    };
    let settings = ModelSettings {
        temperature: Some(0.5),
        reasoning_effort: Some("low".into()),
        ..settings()
    };
    let mut cache = RequestCache::default();
    for portable in [false, true, false] {
        let fresh = request_body(&settings, &request, portable);
        let first = request_body_cached(&settings, &request, portable, &mut cache);
        let reused = request_body_cached(&settings, &request, portable, &mut cache);
        assert_eq!(first, fresh, "portable: {portable}");
        assert_eq!(reused, fresh, "portable: {portable}");
    }
    // Other specs are not served the old array.
    let other = shell_tool(json!({"type": "object", "properties": {}}));
    let other_request = ChatRequest {
        messages: &messages,
        tools: &other,
    };
    assert_eq!(
        request_body_cached(&settings, &other_request, false, &mut cache),
        request_body(&settings, &other_request, false)
    );
    let body: Value =
        serde_json::from_slice(&request_body_cached(&settings, &request, false, &mut cache))
            .unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "model",
        "messages",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "temperature",
        "reasoning_effort",
    ] {
        assert!(keys.contains(&key), "{key} missing from {body}");
    }
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["tools"][0]["function"]["name"], "shell");
}

/// A conversation with every kind of message and text that needs escaping.
fn long_conversation() -> Vec<ChatMessage> {
    let mut messages = vec![
        ChatMessage::system(
            "You are \"careful\".\n\tTabs, quotes \\ and \u{1} control bytes; ünïcödé ✓",
        ),
        ChatMessage::user("fix the test in src/lib.rs </script>"),
    ];
    for turn in 0..12 {
        let calls = (0..turn % 3 + 1)
            .map(|n| ToolCall {
                id: format!("call_{turn}_{n}"),
                name: "run_shell_command".into(),
                arguments: format!(r#"{{"command_string":"grep -n \"fn {turn}\" src/*.rs"}}"#),
            })
            .collect::<Vec<_>>();
        messages.push(ChatMessage::Assistant {
            content: (turn % 2 == 0).then(|| format!("Turn {turn}: looking…")),
            tool_calls: calls.clone(),
        });
        for call in calls {
            messages.push(ChatMessage::tool_result(
                call.id,
                format!(
                    "line 1\nline \"2\"\r\n\u{7f}\u{2028} {}",
                    "x".repeat(turn * 50)
                ),
            ));
        }
    }
    messages.push(ChatMessage::Assistant {
        content: None,
        tool_calls: Vec::new(),
    });
    messages.push(ChatMessage::user("keep going"));
    messages
}

#[test]
fn cached_bodies_are_byte_identical_to_fresh_serialisation_turn_after_turn() {
    let tools = shell_tool(json!({"type": "object", "properties": {"n": {"type": "integer"}}}));
    let settings = ModelSettings {
        temperature: Some(0.2),
        max_output_tokens: Some(1000),
        reasoning_effort: Some("high".into()),
        ..settings()
    };
    let conversation = long_conversation();
    let mut cache = RequestCache::default();
    let mut check = |messages: &[ChatMessage], portable: bool, what: &str| {
        let request = ChatRequest {
            messages,
            tools: &tools,
        };
        let fresh = request_body(&settings, &request, portable);
        let cached = request_body_cached(&settings, &request, portable, &mut cache);
        assert!(
            cached == fresh,
            "{what}: cached {}\nfresh  {}",
            String::from_utf8_lossy(&cached),
            String::from_utf8_lossy(&fresh)
        );
    };
    // The conversation growing one message at a time, as the loop sends it.
    for len in 0..=conversation.len() {
        check(
            &conversation[..len],
            len % 5 == 0,
            &format!("{len} messages"),
        );
    }
    // The same request again, all served from the cache.
    check(&conversation, false, "repeated");
    // An old tool output replaced in place (context elision), same length and not.
    let mut elided = conversation.clone();
    if let ChatMessage::Tool { content, .. } = &mut elided[3] {
        *content = "[output elided to save context: 40 bytes]".into();
    }
    check(&elided, false, "elided in place");
    let mut same_length = elided.clone();
    if let ChatMessage::Tool { content, .. } = &mut same_length[3] {
        *content = content.replace("40", "41");
    }
    check(&same_length, false, "changed, same length");
    // A shorter conversation (another run through the same client), then longer again.
    check(&conversation[..4], false, "shorter");
    check(&conversation, true, "longer again");
    check(&[], false, "empty");
}

#[test]
fn text_tool_calling_bodies_from_the_cache_match_fresh_ones() {
    let tools = shell_tool(json!({"type": "object"}));
    let settings = ModelSettings {
        tool_calling: ToolCalling::Text,
        ..settings()
    };
    let conversation = long_conversation();
    let mut cache = RequestCache::default();
    for len in [2, 5, conversation.len()] {
        let request = ChatRequest {
            messages: &conversation[..len],
            tools: &tools,
        };
        assert_eq!(
            request_body_cached(&settings, &request, false, &mut cache),
            request_body(&settings, &request, false),
            "{len} messages"
        );
    }
}
