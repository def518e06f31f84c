use serde_json::json;

use super::*;

#[test]
fn blocks_in_the_text_become_calls_and_the_rest_stays_text() {
    let content = "Let me look.\n<tool_call>\n{\"name\": \"read_file_content\", \"arguments\": {\"file_path\": \"a.py\"}}\n</tool_call>\n<tool_call>{\"name\": \"list_directory\"}</tool_call>";
    let (rest, calls) = extract_calls(content).unwrap();
    assert_eq!(rest.as_deref(), Some("Let me look."));
    assert_eq!(
        calls,
        vec![
            TextCall {
                name: "read_file_content".into(),
                arguments: r#"{"file_path":"a.py"}"#.into()
            },
            TextCall {
                name: "list_directory".into(),
                arguments: "{}".into()
            },
        ]
    );
}

#[test]
fn a_block_cut_before_its_closing_tag_or_fenced_still_counts() {
    let (rest, calls) = extract_calls(
        "<tool_call>\n```json\n{\"name\": \"t\", \"arguments\": \"{\\\"a\\\":1}\"}\n```",
    )
    .unwrap();
    assert_eq!(rest, None);
    assert_eq!(calls[0].arguments, r#"{"a":1}"#);
}

#[test]
fn text_without_a_well_formed_block_is_no_call() {
    assert_eq!(extract_calls("no calls here"), None);
    assert_eq!(extract_calls("<tool_call>not json</tool_call>"), None);
    assert_eq!(
        extract_calls("<tool_call>{\"arguments\": {}}</tool_call>"),
        None
    );
}

#[test]
fn earlier_calls_and_results_are_replayed_as_text_with_results_joined() {
    let tools = vec![tools::ToolSpec {
        name: "t".into(),
        description: "d".into(),
        parameters: json!({"type": "object"}),
    }];
    let messages = vec![
        ChatMessage::system("sys"),
        ChatMessage::user("go"),
        ChatMessage::Assistant {
            content: Some("two calls".into()),
            tool_calls: vec![
                ToolCall {
                    id: "1".into(),
                    name: "t".into(),
                    arguments: r#"{"a":1}"#.into(),
                },
                ToolCall {
                    id: "2".into(),
                    name: "t".into(),
                    arguments: "broken".into(),
                },
            ],
        },
        ChatMessage::tool_result("1", "one"),
        ChatMessage::tool_result("2", "two"),
    ];
    let request = ChatRequest {
        messages: &messages,
        tools: &tools,
    };
    let out = text_messages(&request);
    assert_eq!(out.len(), 4);
    assert_eq!(out[2].role, "assistant");
    assert!(
        out[2]
            .content
            .contains(r#"{"arguments":{"a":1},"name":"t"}"#),
        "{}",
        out[2].content
    );
    assert!(
        out[2].content.contains(r#""arguments":"broken""#),
        "{}",
        out[2].content
    );
    assert_eq!(out[3].role, "user");
    assert_eq!(
        out[3].content,
        "<tool_response>\none\n</tool_response>\n\n<tool_response>\ntwo\n</tool_response>"
    );
    // What the model writes back parses into the same calls.
    let (_, calls) = extract_calls(&out[2].content).unwrap();
    assert_eq!(calls[0].name, "t");
}
