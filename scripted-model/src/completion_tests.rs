use serde_json::json;

use super::*;

fn meta() -> CompletionMeta {
    CompletionMeta {
        id: "chatcmpl-test".into(),
        created: 1,
        model: "scripted".into(),
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCallOut {
    ToolCallOut {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

fn usage() -> Usage {
    Usage {
        prompt_tokens: 3,
        completion_tokens: 4,
    }
}

#[test]
fn pieces_rejoin_to_the_original_text() {
    for text in ["", "a", "ab", "hello world", "{\"path\":\"src/main.rs\"}"] {
        for pieces in 1..=5 {
            let parts = split_pieces(text, pieces);
            assert_eq!(parts.concat(), text, "{text:?} in {pieces}");
            assert!(parts.len() <= pieces, "{text:?} in {pieces}: {parts:?}");
            assert!(parts.iter().all(|part| !part.is_empty()), "{parts:?}");
        }
    }
}

#[test]
fn long_text_is_split_into_the_requested_number_of_pieces() {
    assert_eq!(split_pieces("abcdefghi", 3), vec!["abc", "def", "ghi"]);
}

#[test]
fn pieces_never_split_a_multibyte_character() {
    let text = "héllo wörld ✓✓✓";
    let parts = split_pieces(text, 4);
    assert_eq!(parts.len(), 4);
    assert_eq!(parts.concat(), text);
}

#[test]
fn tool_call_deltas_open_with_id_and_name_then_interleave_argument_pieces() {
    let deltas = interleaved_tool_call_deltas(&[
        call("call_1", "read", "{\"a\":1}"),
        call("call_2", "list", "{\"b\":2}"),
    ]);
    let indexes: Vec<u64> = deltas
        .iter()
        .map(|d| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0, 1, 0, 1, 0, 1, 0, 1]);
    assert_eq!(deltas[0]["id"], "call_1");
    assert_eq!(deltas[0]["type"], "function");
    assert_eq!(deltas[0]["function"]["name"], "read");
    assert_eq!(deltas[1]["id"], "call_2");
    for delta in &deltas[2..] {
        assert!(delta.get("id").is_none(), "{delta}");
        assert!(delta["function"].get("name").is_none(), "{delta}");
    }
    let rejoined: String = deltas
        .iter()
        .filter(|d| d["index"] == 1)
        .map(|d| d["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(rejoined, "{\"b\":2}");
}

#[test]
fn stream_ends_with_finish_reason_then_usage_when_asked() {
    let turn = AssistantTurn {
        content: Some("hello there".into()),
        tool_calls: Vec::new(),
        usage: usage(),
    };
    let chunks = turn.to_chunks(&meta(), true);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let last = &chunks[chunks.len() - 1];
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 7);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
}

#[test]
fn stream_without_include_usage_has_no_usage_field() {
    let turn = AssistantTurn {
        content: Some("hi".into()),
        tool_calls: Vec::new(),
        usage: usage(),
    };
    let chunks = turn.to_chunks(&meta(), false);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[test]
fn first_chunk_carries_the_assistant_role() {
    let turn = AssistantTurn {
        content: None,
        tool_calls: vec![call("call_1", "read", "{}")],
        usage: usage(),
    };
    let chunks = turn.to_chunks(&meta(), false);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks[0]["choices"][0]["delta"]["content"].is_null());
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn response_without_tool_calls_omits_the_field() {
    let turn = AssistantTurn {
        content: Some("done".into()),
        tool_calls: Vec::new(),
        usage: usage(),
    };
    let response = turn.to_response(&meta());
    assert!(
        response["choices"][0]["message"]
            .get("tool_calls")
            .is_none()
    );
    assert_eq!(response["choices"][0]["finish_reason"], "stop");
    assert_eq!(response["object"], "chat.completion");
}

#[test]
fn scripted_usage_wins_over_the_estimate() {
    let usage = Usage::resolve(
        Some(ScriptedUsage {
            prompt_tokens: 100,
            completion_tokens: 5,
        }),
        &json!({"messages": [{"role": "user", "content": "x".repeat(400)}]}),
        Some("abc"),
        &[],
    );
    assert_eq!(usage.prompt_tokens, 100);
    assert_eq!(usage.completion_tokens, 5);
}

#[test]
fn estimated_usage_counts_four_characters_a_token() {
    let request = json!({"messages": [{"role": "user", "content": "12345678"}]});
    let prompt_chars = request["messages"].to_string().chars().count();
    let usage = Usage::resolve(None, &request, Some("abcd"), &[call("c", "ab", "cdefgh")]);
    assert_eq!(usage.prompt_tokens as usize, prompt_chars.div_ceil(4));
    assert_eq!(usage.completion_tokens, 3);
}

#[test]
fn error_bodies_are_typed_by_status() {
    let rate = error_body(429, "slow down");
    assert_eq!(rate["error"]["type"], "rate_limit_error");
    assert_eq!(rate["error"]["code"], "rate_limit_exceeded");
    assert_eq!(rate["error"]["message"], "slow down");
    assert_eq!(error_body(401, "x")["error"]["code"], "invalid_api_key");
    assert_eq!(error_body(500, "x")["error"]["type"], "server_error");
    assert_eq!(
        error_body(400, "x")["error"]["type"],
        "invalid_request_error"
    );
}
