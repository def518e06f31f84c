//! What the model reads back from an MCP tool call.
//!
//! A result holds content blocks (text, images, audio, embedded resources, resource
//! links), optionally structured content, and `isError`. Text is passed on; binary
//! blocks become a one-line note (the model cannot read base64 usefully and it would
//! crowd the context); structured content is shown as JSON when no text says the same.
//! The whole is capped like every other tool output.

use serde_json::Value;
use tools::output_cap::truncate_middle;

/// Most bytes of one result shown to the model.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// The text for the model and whether the call succeeded, from a `CallToolResult`
/// (taken as JSON, so every content type the protocol grows is at least named).
pub fn render_result(result: &Value) -> (String, bool) {
    let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
    let mut parts: Vec<String> = result
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| blocks.iter().map(render_block).collect())
        .unwrap_or_default();
    let has_text = result
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type") == Some(&Value::from("text")))
        });
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null())
        && !has_text
    {
        parts.push(structured.to_string());
    }
    let text = if parts.is_empty() {
        "(the tool returned no content)".to_string()
    } else {
        parts.join("\n")
    };
    (truncate_middle(&text, MAX_RESULT_BYTES), !is_error)
}

fn render_block(block: &Value) -> String {
    let field = |name: &str| block.get(name).and_then(Value::as_str).unwrap_or_default();
    match field("type") {
        "text" => field("text").to_string(),
        kind @ ("image" | "audio") => format!(
            "[{kind} content ({}, {} bytes of base64) not shown]",
            non_empty(field("mimeType"), "unknown type"),
            field("data").len()
        ),
        "resource" => {
            let resource = block.get("resource").cloned().unwrap_or_default();
            let uri = resource.get("uri").and_then(Value::as_str).unwrap_or("?");
            match resource.get("text").and_then(Value::as_str) {
                Some(text) => format!("[resource {uri}]\n{text}"),
                None => format!("[binary resource {uri} not shown]"),
            }
        }
        "resource_link" => {
            let name = field("name");
            format!(
                "[resource link: {}{}]",
                field("uri"),
                if name.is_empty() {
                    String::new()
                } else {
                    format!(" ({name})")
                }
            )
        }
        other => format!("[{} content not shown]", non_empty(other, "unknown")),
    }
}

fn non_empty<'a>(text: &'a str, fallback: &'a str) -> &'a str {
    if text.is_empty() { fallback } else { text }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_blocks_are_joined_and_is_error_is_a_failure() {
        let (text, ok) = render_result(&json!({"content": [
            {"type": "text", "text": "line one"}, {"type": "text", "text": "line two"}
        ]}));
        assert_eq!(text, "line one\nline two");
        assert!(ok);
        let (text, ok) = render_result(
            &json!({"content": [{"type": "text", "text": "no such file"}], "isError": true}),
        );
        assert_eq!(text, "no such file");
        assert!(!ok);
    }

    #[test]
    fn binary_content_is_named_not_shown() {
        let (text, _) = render_result(&json!({"content": [
            {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "hello"}},
            {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AAAA"}},
            {"type": "resource_link", "uri": "file:///c", "name": "c"},
        ]}));
        assert_eq!(
            text,
            "[image content (image/png, 8 bytes of base64) not shown]\n[resource file:///a.txt]\nhello\n[binary resource file:///b.bin not shown]\n[resource link: file:///c (c)]"
        );
    }

    #[test]
    fn structured_content_is_shown_when_no_text_says_it() {
        let (text, _) = render_result(&json!({"content": [], "structuredContent": {"sum": 3}}));
        assert_eq!(text, r#"{"sum":3}"#);
        let (text, _) = render_result(
            &json!({"content": [{"type": "text", "text": "3"}], "structuredContent": {"sum": 3}}),
        );
        assert_eq!(text, "3");
        let (text, _) = render_result(&json!({}));
        assert_eq!(text, "(the tool returned no content)");
    }

    #[test]
    fn huge_results_are_capped() {
        let big = "x".repeat(MAX_RESULT_BYTES * 3);
        let (text, _) = render_result(&json!({"content": [{"type": "text", "text": big}]}));
        assert!(text.len() < MAX_RESULT_BYTES + 200, "{}", text.len());
    }
}
