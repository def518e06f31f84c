use super::*;

#[test]
fn events_serialize_flat_with_type_tag() {
    let record = EventRecord {
        seq: 3,
        ts_ms: 1_700_000_000_000,
        event: AgentEvent::ToolCall {
            turn: 1,
            call_id: "call_1".into(),
            name: "read_file_content".into(),
            arguments: r#"{"file_path":"a.rs"}"#.into(),
        },
    };
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(value["type"], "tool_call");
    assert_eq!(value["seq"], 3);
    assert_eq!(value["name"], "read_file_content");
    let back: EventRecord = serde_json::from_value(value).unwrap();
    assert!(matches!(back.event, AgentEvent::ToolCall { turn: 1, .. }));
}

#[test]
fn published_schema_matches_the_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/agent-events.schema.json");
    let generated = serde_json::to_string_pretty(&event_schema()).unwrap() + "\n";
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == generated,
        "{} is out of date; regenerate it with `cargo run -p agent-rs -- schema > schemas/agent-events.schema.json`",
        path.display()
    );
}

#[test]
fn schema_names_every_event_type() {
    let schema = serde_json::to_string(&event_schema()).unwrap();
    for name in [
        "task_started",
        "model_request",
        "model_retry",
        "model_response",
        "message",
        "tool_call",
        "tool_result",
        "context_elided",
        "task_finished",
    ] {
        assert!(
            schema.contains(&format!("\"{name}\"")),
            "schema lacks {name}"
        );
    }
}
