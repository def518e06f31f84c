use serde_json::json;

use super::*;

fn parse_error(json: &str) -> String {
    Script::from_json(json).unwrap_err().to_string()
}

#[test]
fn every_step_kind_parses_from_a_hand_written_script() {
    let script = Script::from_json(
        r#"{
          "model": "m1",
          "steps": [
            {"type": "tool_calls", "content": "looking",
             "calls": [{"name": "read_file_content", "arguments": {"path": "a.rs"}}],
             "usage": {"prompt_tokens": 10, "completion_tokens": 2}},
            {"type": "message", "content": "done"},
            {"type": "error", "status": 429, "retry_after_secs": 1},
            {"type": "error", "status": 502, "body": "<html>bad gateway</html>"},
            {"type": "cut_stream"},
            {"type": "delay", "ms": 5, "then": {"type": "message", "content": "late"}}
          ]
        }"#,
    )
    .unwrap();

    assert_eq!(script.model, "m1");
    assert_eq!(
        script.steps[0],
        Step::ToolCalls {
            calls: vec![ScriptedToolCall {
                name: "read_file_content".into(),
                arguments: json!({"path": "a.rs"}),
            }],
            content: Some("looking".into()),
            usage: Some(ScriptedUsage {
                prompt_tokens: 10,
                completion_tokens: 2
            }),
        }
    );
    assert_eq!(
        script.steps[2],
        Step::Error {
            status: 429,
            retry_after_secs: Some(1),
            message: None,
            body: None
        }
    );
    assert_eq!(script.steps[4], Step::CutStream { content: None });
    assert_eq!(
        script.steps[5].answer(),
        &Step::Message {
            content: "late".into(),
            usage: None
        }
    );
    assert_eq!(script.steps[5].total_delay_ms(), 5);
}

#[test]
fn model_defaults_to_scripted() {
    let script = Script::from_json(r#"{"steps": []}"#).unwrap();
    assert_eq!(script.model, DEFAULT_MODEL);
}

#[test]
fn tool_call_without_arguments_sends_an_empty_object() {
    let script =
        Script::from_json(r#"{"steps": [{"type": "tool_calls", "calls": [{"name": "list"}]}]}"#)
            .unwrap();
    let Step::ToolCalls { calls, .. } = &script.steps[0] else {
        panic!("expected tool_calls, got {:?}", script.steps[0]);
    };
    assert_eq!(calls[0].arguments_string(), "{}");
}

#[test]
fn string_arguments_are_sent_verbatim_so_scripts_can_send_malformed_json() {
    let call = ScriptedToolCall {
        name: "shell".into(),
        arguments: json!("{\"command\": "),
    };
    assert_eq!(call.arguments_string(), "{\"command\": ");
}

#[test]
fn object_arguments_are_serialized_to_json_text() {
    let call = ScriptedToolCall {
        name: "shell".into(),
        arguments: json!({"command": "ls"}),
    };
    assert_eq!(call.arguments_string(), r#"{"command":"ls"}"#);
}

#[test]
fn unknown_step_type_is_rejected_with_the_type_named() {
    let message = parse_error(r#"{"steps": [{"type": "reply", "content": "x"}]}"#);
    assert!(message.contains("unknown variant `reply`"), "{message}");
    assert!(message.contains("tool_calls, message, error"), "{message}");
}

#[test]
fn step_without_type_is_rejected() {
    let message = parse_error(r#"{"steps": [{"content": "x"}]}"#);
    assert!(message.contains("missing field `type`"), "{message}");
}

#[test]
fn message_without_content_is_rejected() {
    let message = parse_error(r#"{"steps": [{"type": "message"}]}"#);
    assert!(message.contains("missing field `content`"), "{message}");
}

#[test]
fn tool_call_without_name_is_rejected() {
    let message =
        parse_error(r#"{"steps": [{"type": "tool_calls", "calls": [{"arguments": {}}]}]}"#);
    assert!(message.contains("missing field `name`"), "{message}");
}

#[test]
fn delay_without_then_is_rejected() {
    let message = parse_error(r#"{"steps": [{"type": "delay", "ms": 10}]}"#);
    assert!(message.contains("missing field `then`"), "{message}");
}

#[test]
fn misspelled_step_field_is_rejected() {
    let message = parse_error(r#"{"steps": [{"type": "message", "contents": "x"}]}"#);
    assert!(message.contains("unknown field `contents`"), "{message}");
}

#[test]
fn misspelled_top_level_field_is_rejected() {
    let message = parse_error(r#"{"model": "m", "step": []}"#);
    assert!(message.contains("unknown field `step`"), "{message}");
}

#[test]
fn script_without_steps_is_rejected() {
    let message = parse_error(r#"{"model": "m"}"#);
    assert!(message.contains("missing field `steps`"), "{message}");
}

#[test]
fn usage_on_an_error_step_is_rejected() {
    let message = parse_error(
        r#"{"steps": [{"type": "error", "status": 500,
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}}]}"#,
    );
    assert!(message.contains("unknown field `usage`"), "{message}");
}

#[test]
fn non_error_status_is_rejected_with_the_step_index() {
    let message = parse_error(
        r#"{"steps": [{"type": "message", "content": "ok"}, {"type": "error", "status": 200}]}"#,
    );
    assert!(message.contains("step 1"), "{message}");
    assert!(message.contains("400..=599"), "{message}");
}

#[test]
fn tool_calls_step_without_calls_is_rejected() {
    let message = parse_error(r#"{"steps": [{"type": "tool_calls", "calls": []}]}"#);
    assert!(message.contains("at least one call"), "{message}");
}

#[test]
fn blank_tool_name_is_rejected() {
    let message = parse_error(r#"{"steps": [{"type": "tool_calls", "calls": [{"name": " "}]}]}"#);
    assert!(message.contains("empty \"name\""), "{message}");
}

#[test]
fn invalid_step_inside_a_delay_is_rejected() {
    let message = parse_error(
        r#"{"steps": [{"type": "delay", "ms": 1, "then": {"type": "error", "status": 99}}]}"#,
    );
    assert!(message.contains("step 0"), "{message}");
}

#[test]
fn script_that_is_not_json_is_rejected() {
    let message = parse_error("steps: []");
    assert!(message.starts_with("malformed script"), "{message}");
}

#[test]
fn script_file_is_read_and_parse_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"steps": [{"type": "message", "content": "hi"}]}"#,
    )
    .unwrap();
    assert_eq!(Script::from_file(&good).unwrap().steps.len(), 1);

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"steps": [{"type": "nope"}]}"#).unwrap();
    let message = Script::from_file(&bad).unwrap_err().to_string();
    assert!(message.contains("bad.json"), "{message}");
}

#[test]
fn missing_script_file_is_a_read_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.json");
    let error = Script::from_file(&missing).unwrap_err();
    assert!(matches!(error, ScriptError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("absent.json"), "{error}");
}

#[test]
fn script_round_trips_through_json() {
    let script = Script::new(vec![
        Step::Message {
            content: "hi".into(),
            usage: None,
        },
        Step::Delay {
            ms: 3,
            then: Box::new(Step::CutStream {
                content: Some("par".into()),
            }),
        },
    ]);
    let text = serde_json::to_string(&script).unwrap();
    assert_eq!(Script::from_json(&text).unwrap(), script);
}

#[test]
fn script_from_value_validates_too() {
    let error =
        Script::from_value(json!({"steps": [{"type": "error", "status": 302}]})).unwrap_err();
    assert!(
        matches!(error, ScriptError::Invalid { index: 0, .. }),
        "{error:?}"
    );
}
