use serde_json::{Value, json};

use super::*;

fn chunk(value: Value) -> Chunk {
    serde_json::from_value(value).unwrap()
}

fn delta(delta: Value, finish_reason: Option<&str>) -> Chunk {
    chunk(json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}))
}

fn finish(assembler: StreamAssembler) -> ModelResponse {
    let mut n = 0;
    assembler
        .finish(1, &mut || {
            n += 1;
            format!("made_{n}")
        })
        .0
}

#[test]
fn text_deltas_are_returned_and_accumulated() {
    let mut assembler = StreamAssembler::default();
    let pushed = |a: &mut StreamAssembler, c| a.push(c).unwrap();
    assert_eq!(
        pushed(
            &mut assembler,
            delta(json!({"role": "assistant", "content": ""}), None)
        ),
        None
    );
    assert_eq!(
        pushed(&mut assembler, delta(json!({"content": "ab"}), None)),
        Some("ab".into())
    );
    assert_eq!(
        pushed(&mut assembler, delta(json!({"content": "c"}), Some("stop"))),
        Some("c".into())
    );
    let response = finish(assembler);
    assert_eq!(response.content.as_deref(), Some("abc"));
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
}

#[test]
fn a_stream_is_finished_by_a_finish_reason_or_the_done_sentinel_only() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(delta(json!({"content": "partial"}), None))
        .unwrap();
    assert!(!assembler.is_finished());
    assembler.push(delta(json!({}), Some("length"))).unwrap();
    assert!(assembler.is_finished());

    let mut done_only = StreamAssembler::default();
    done_only
        .push(delta(json!({"content": "x"}), None))
        .unwrap();
    done_only.mark_done();
    assert!(done_only.is_finished());
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
    assembler.push(call("call_1", "read_", "{\"a\"")).unwrap();
    assembler.push(call("call_1", "file", ":1}")).unwrap();
    assembler.push(call("call_1", "read_file", "")).unwrap();
    assembler
        .push(delta(json!({}), Some("tool_calls")))
        .unwrap();
    assert_eq!(
        finish(assembler).tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "read_file".into(),
            arguments: "{\"a\":1}".into(),
        }]
    );
}

#[test]
fn tool_calls_keep_the_order_in_which_they_opened() {
    let mut assembler = StreamAssembler::default();
    for index in [0, 1, 2] {
        assembler
            .push(delta(
                json!({"tool_calls": [{"index": index, "id": format!("id{index}"), "function": {"name": "t", "arguments": "{}"}}]}),
                None,
            ))
            .unwrap();
    }
    assembler
        .push(delta(json!({}), Some("tool_calls")))
        .unwrap();
    let ids: Vec<String> = finish(assembler)
        .tool_calls
        .into_iter()
        .map(|call| call.id)
        .collect();
    assert_eq!(ids, ["id0", "id1", "id2"]);
}

#[test]
fn calls_all_numbered_zero_but_with_their_own_ids_stay_apart() {
    let mut assembler = StreamAssembler::default();
    for (id, name) in [("a", "one"), ("b", "two")] {
        assembler
            .push(delta(
                json!({"tool_calls": [{"index": 0, "id": id, "function": {"name": name, "arguments": "{}"}}]}),
                None,
            ))
            .unwrap();
    }
    let names: Vec<String> = finish(assembler)
        .tool_calls
        .into_iter()
        .map(|call| call.name)
        .collect();
    assert_eq!(names, ["one", "two"]);
}

#[test]
fn pieces_without_index_or_id_continue_the_last_call() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(delta(
            json!({"tool_calls": [{"function": {"name": "search", "arguments": "{\"q\":"}}]}),
            None,
        ))
        .unwrap();
    assembler
        .push(delta(
            json!({"tool_calls": [{"function": {"arguments": "\"x\"}"}}]}),
            None,
        ))
        .unwrap();
    assembler
        .push(delta(
            json!({"tool_calls": [{"function": {"name": "list", "arguments": "{}"}}]}),
            Some("stop"),
        ))
        .unwrap();
    let response = finish(assembler);
    assert_eq!(response.tool_calls.len(), 2, "{response:?}");
    assert_eq!(response.tool_calls[0].arguments, "{\"q\":\"x\"}");
    assert_eq!(response.tool_calls[1].name, "list");
}

#[test]
fn missing_ids_are_made_up_and_empty_arguments_become_an_empty_object() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(delta(
            json!({"tool_calls": [{"index": 3, "id": "", "function": {"name": "list_directory"}}]}),
            Some("tool_calls"),
        ))
        .unwrap();
    let response = finish(assembler);
    assert_eq!(response.tool_calls[0].id, "made_1");
    assert_eq!(response.tool_calls[0].arguments, "{}");
}

#[test]
fn arguments_sent_as_an_object_are_kept_as_json_text() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(delta(
            json!({"tool_calls": [{"id": "c", "function": {"name": "t", "arguments": {"path": "a"}}}]}),
            Some("tool_calls"),
        ))
        .unwrap();
    assert_eq!(finish(assembler).tool_calls[0].arguments, r#"{"path":"a"}"#);
}

#[test]
fn a_name_carried_inside_the_arguments_is_recovered() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(delta(
            json!({"tool_calls": {"index": 0, "id": "", "function": {"name": null,
                "arguments": "{ \"function\": { \"_name\": \"get_weather\", \"city\": \"Paris\" } }</s>"}}}),
            Some("stop"),
        ))
        .unwrap();
    let call = &finish(assembler).tool_calls[0];
    assert_eq!(call.name, "get_weather");
    assert_eq!(call.arguments, r#"{"city":"Paris"}"#);
}

#[test]
fn choices_other_than_the_first_are_ignored() {
    let mut assembler = StreamAssembler::default();
    let text = assembler
        .push(chunk(
            json!({"choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": "stop"}]}),
        ))
        .unwrap();
    assert_eq!(text, None);
    assert!(!assembler.is_finished());
}

#[test]
fn the_last_real_usage_wins_wherever_the_server_put_it() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(chunk(json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})))
        .unwrap();
    assembler
        .push(chunk(json!({"choices": [], "x_groq": {"usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}})))
        .unwrap();
    assembler
        .push(chunk(json!({"choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})))
        .unwrap();
    assembler.push(delta(json!({}), Some("stop"))).unwrap();
    let response = finish(assembler);
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 7,
            completion_tokens: 1,
            total_tokens: 8
        }
    );
    assert!(!response.usage_estimated);
}

#[test]
fn a_missing_total_is_the_sum_and_no_usage_is_flagged() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(chunk(
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}}]}),
        ))
        .unwrap();
    assert_eq!(finish(assembler).usage.total_tokens, 7);

    let mut none = StreamAssembler::default();
    none.push(delta(json!({"content": "x"}), Some("stop")))
        .unwrap();
    assert!(finish(none).usage_estimated);
}

#[test]
fn an_error_object_inside_a_normal_chunk_fails_the_stream() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(delta(json!({"content": "so far"}), Some("length")))
        .unwrap();
    let fault = assembler
        .push(chunk(
            json!({"error": {"code": 400, "message": "Token limit reached"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": null}]}),
        ))
        .unwrap_err();
    assert!(
        matches!(&fault, StreamFault::ServerError(error) if error["message"] == "Token limit reached"),
        "{fault:?}"
    );
}

#[test]
fn a_finish_reason_meaning_the_server_gave_up_fails_the_stream() {
    for reason in ["abort", "error", "insufficient_system_resource"] {
        let mut assembler = StreamAssembler::default();
        let fault = assembler.push(delta(json!({}), Some(reason))).unwrap_err();
        assert_eq!(fault, StreamFault::Abandoned(reason.into()));
    }
}

#[test]
fn null_fields_read_as_absent() {
    let mut assembler = StreamAssembler::default();
    assembler
        .push(chunk(
            json!({"choices": null, "usage": null, "error": null}),
        ))
        .unwrap();
    assembler
        .push(chunk(json!({"choices": [{"delta": {"content": null, "tool_calls": null}, "finish_reason": null}]})))
        .unwrap();
    assert!(!assembler.is_finished());
}
