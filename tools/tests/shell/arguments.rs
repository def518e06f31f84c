//! Malformed arguments are refused as such, and nothing runs.

use serde_json::json;
use tools::shell::ShellTool;
use tools::{Tool, ToolError};

use crate::support::Workspace;

#[tokio::test]
async fn malformed_arguments_are_invalid_arguments() {
    let ws = Workspace::new();
    let marker = ws.path("ran");
    let touch = format!("touch '{}'", marker.display());
    let cases = [
        json!({}),
        json!({"target_directory": "."}),
        json!({"command_string": 42}),
        json!({"command_string": ["echo", "hi"]}),
        json!({"command_string": touch, "unexpected": true}),
        json!({"command_string": touch, "timeout_seconds": 0}),
        json!({"command_string": touch, "timeout_seconds": -5}),
        json!({"command_string": touch, "timeout_seconds": 1.5}),
        json!({"command_string": touch, "timeout_seconds": "10"}),
        json!({"command_string": touch, "target_directory": 3}),
        json!({"command_string": "   "}),
        json!("not an object"),
    ];
    for args in cases {
        let err = ws.call(args.clone()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ToolError::InvalidArguments {
                    tool: "run_shell_command",
                    ..
                }
            ),
            "{args}: {err:?}"
        );
    }
    assert!(!marker.exists());
}

#[test]
fn shell_tool_mutates_and_keeps_its_name() {
    assert!(ShellTool.mutates());
    assert_eq!(ShellTool.name(), "run_shell_command");
}
