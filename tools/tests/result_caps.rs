#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every tool result is bounded the way reads are, and centred on what matters: the
//! lines an edit wrote (around the replacement when a line is huge), the match in a long
//! line that a search found. A minified 2 MB line never goes to the model whole.

mod file_tools_support;

use std::sync::Arc;

use async_trait::async_trait;
use file_tools_support::{workspace, workspace_with};
use serde_json::json;
use tools::search_code::SearchCodeTool;
use tools::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry, ToolsConfig};

/// A 2 MB minified line with one marker in its middle.
fn minified_line() -> String {
    let half = "a=1;".repeat(256 * 1024);
    format!("{half}OLD_MARK{half}\n")
}

#[tokio::test]
async fn editing_a_huge_line_shows_the_replacement_and_its_surroundings_only() {
    let ws = workspace();
    ws.write("bundle.min.js", format!("// header\n{}", minified_line()));
    let out = ws
        .edit(json!({"file_path": "bundle.min.js", "old_text": "OLD_MARK", "new_text": "NEW_MARK"}))
        .await
        .unwrap();
    assert!(ws.contents("bundle.min.js").contains("a=1;NEW_MARKa=1;"));
    assert!(
        out.content.len() < 8_000,
        "{} bytes returned for a one-word edit",
        out.content.len()
    );
    assert!(out.content.contains("a=1;NEW_MARKa=1;"), "{}", out.content);
    assert!(out.content.contains("1\t// header"), "{}", out.content);
    assert!(
        out.content.contains("bytes of line 2 not shown"),
        "the cut is said: {}",
        out.content
    );
}

#[tokio::test]
async fn a_huge_new_text_is_shown_capped() {
    let ws = workspace();
    ws.write("data.json", "[\n  1\n]\n");
    let big = format!("  {}", "7,".repeat(400_000));
    let out = ws
        .edit(json!({"file_path": "data.json", "old_text": "  1", "new_text": big}))
        .await
        .unwrap();
    assert!(out.content.len() < 8_000, "{} bytes", out.content.len());
    assert!(out.content.contains("2\t  7,7,7,"), "{}", out.content);
    assert!(out.content.contains("3\t]"), "{}", out.content);
}

#[tokio::test]
async fn creating_a_file_of_one_huge_line_shows_it_capped() {
    let ws = workspace();
    let out = ws
        .edit(json!({"file_path": "blob.txt", "old_text": "", "new_text": "z".repeat(3_000_000)}))
        .await
        .unwrap();
    assert_eq!(ws.contents("blob.txt").len(), 3_000_000);
    assert!(out.content.len() < 8_000, "{} bytes", out.content.len());
    assert!(
        out.content.contains("Created `blob.txt`"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn a_search_shows_the_match_of_a_long_line_not_its_start() {
    let ws = workspace();
    ws.write(
        "long.js",
        format!("{}needle(){}\n", "x".repeat(50_000), "y".repeat(50_000)),
    );
    let out = SearchCodeTool
        .call(&ws.ctx, json!({"pattern": "needle"}))
        .await
        .unwrap();
    let line = out.content.lines().next().unwrap();
    assert!(line.starts_with("long.js:1:"), "{line}");
    assert!(line.contains("xxxxneedle()yyyy"), "{line}");
    assert!(line.contains("characters before"), "{line}");
    assert!(line.contains("more characters"), "{line}");
    assert!(line.len() < 1_000, "{} bytes", line.len());
}

#[tokio::test]
async fn a_search_match_near_the_start_keeps_the_start() {
    let mut config = ToolsConfig::default();
    config.search.max_line_chars = 40;
    let ws = workspace_with(config);
    ws.write("a.txt", format!("fn needle() {{ {} }}\n", "q".repeat(500)));
    let out = SearchCodeTool
        .call(&ws.ctx, json!({"pattern": "needle"}))
        .await
        .unwrap();
    let line = out.content.lines().next().unwrap();
    assert!(line.starts_with("a.txt:1:fn needle() { qqq"), "{line}");
    assert!(!line.contains("before"), "{line}");
}

/// A tool that answers with whatever it is given, as much as it is given.
struct Echo;

#[async_trait]
impl Tool for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn description(&self) -> &'static str {
        "echo"
    }
    fn parameters(&self) -> serde_json::Value {
        json!({"type": "object"})
    }
    fn mutates(&self) -> bool {
        false
    }
    async fn call(
        &self,
        _: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let text = "e".repeat(args["bytes"].as_u64().unwrap() as usize);
        if args["fail"].as_bool().unwrap_or(false) {
            return Err(ToolError::rejected(text));
        }
        Ok(ToolOutput::success(text))
    }
}

#[tokio::test]
async fn the_registry_caps_any_tool_result_and_error() {
    let ws = workspace_with(ToolsConfig {
        result_max_bytes: 10_000,
        ..ToolsConfig::default()
    });
    let ctx = ToolContext::new(ws.ctx.jail.clone(), Arc::clone(&ws.ctx.config));
    let mut registry = ToolRegistry::new();
    registry.register(Echo);

    let small = registry
        .call(&ctx, "echo", json!({"bytes": 9_000}))
        .await
        .unwrap();
    assert_eq!(small.content.len(), 9_000);

    let big = registry
        .call(&ctx, "echo", json!({"bytes": 5_000_000}))
        .await
        .unwrap();
    assert!(big.content.len() <= 10_200, "{}", big.content.len());
    assert!(big.content.contains("bytes truncated"), "the cut is marked");

    let err = registry
        .call(&ctx, "echo", json!({"bytes": 5_000_000, "fail": true}))
        .await
        .unwrap_err();
    assert!(err.to_string().len() <= 10_200, "{}", err.to_string().len());
}
