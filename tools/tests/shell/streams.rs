//! Exit codes, the two streams kept apart, stdin, and the output cap.

use serde_json::json;
use tools::config::ShellConfig;

use crate::support::Workspace;

#[tokio::test]
async fn exit_code_zero_is_success_with_stdout() {
    let ws = Workspace::new();
    let output = ws.run("echo hello").await;
    assert!(output.success);
    assert!(
        output.content.starts_with("exit code: 0\n"),
        "{}",
        output.content
    );
    assert!(output.content.contains("stdout:\nhello\n"));
    assert!(output.content.ends_with("stderr: (empty)"));
    assert_eq!(output.details["exit_code"], 0);
    assert_eq!(output.details["timed_out"], false);
}

#[tokio::test]
async fn non_zero_exit_code_is_a_failure() {
    let ws = Workspace::new();
    let output = ws.run("echo about to fail; exit 7").await;
    assert!(!output.success);
    assert!(output.content.starts_with("exit code: 7\n"));
    assert!(output.content.contains("about to fail"));
    assert_eq!(output.details["exit_code"], 7);
}

#[tokio::test]
async fn stdout_and_stderr_are_captured_separately() {
    let ws = Workspace::new();
    let output = ws.run("echo to-out; echo to-err >&2").await;
    assert!(
        output.content.contains("stdout:\nto-out\nstderr:\nto-err"),
        "{}",
        output.content
    );
    assert_eq!(output.details["stdout_bytes"], 7);
    assert_eq!(output.details["stderr_bytes"], 7);
}

#[tokio::test]
async fn stdin_is_empty_so_reading_input_does_not_hang() {
    let ws = Workspace::new();
    let output = ws.run("cat; read line; echo \"read status $?\"").await;
    assert!(output.success, "{}", output.content);
    assert!(
        output.content.contains("read status 1"),
        "{}",
        output.content
    );
}

#[tokio::test]
async fn pipes_and_shell_syntax_work() {
    let ws = Workspace::new();
    let output = ws
        .run("for i in 3 1 2; do echo $i; done | sort | tr '\\n' ,")
        .await;
    assert!(
        output.content.contains("stdout:\n1,2,3,"),
        "{}",
        output.content
    );
}

#[tokio::test]
async fn large_output_keeps_head_and_tail_with_a_truncation_marker() {
    let ws = Workspace::with_config(ShellConfig {
        output_cap_bytes: 10_000,
        ..ShellConfig::default()
    });
    let output = ws
        .run("echo FIRST-LINE; head -c 1000000 /dev/zero | tr '\\0' x; echo; echo LAST-LINE")
        .await;
    assert!(output.success, "{}", output.content);
    let total = 11 + 1_000_000 + 1 + 10;
    assert_eq!(output.details["stdout_bytes"], total);
    assert_eq!(output.details["stdout_truncated_bytes"], total - 10_000);
    assert!(output.content.contains("stdout:\nFIRST-LINE\nxxx"));
    assert!(
        output
            .content
            .contains(&format!("\n[... {} bytes truncated ...]\n", total - 10_000))
    );
    assert!(output.content.contains("xxx\nLAST-LINE\n"));
    assert!(output.content.len() < 11_000, "{}", output.content.len());
}

/// Reading one stream after the other would deadlock here: the command blocks writing
/// to a full stderr pipe while the tool waits for stdout to end.
#[tokio::test]
async fn both_streams_are_drained_at_once() {
    let ws = Workspace::with_config(ShellConfig {
        output_cap_bytes: 1_000,
        ..ShellConfig::default()
    });
    let output = ws
        .call(json!({
            "command_string": "head -c 2000000 /dev/zero >&2; head -c 2000000 /dev/zero; echo done >&2",
            "timeout_seconds": 60,
        }))
        .await
        .unwrap();
    assert_eq!(output.details["timed_out"], false);
    assert_eq!(output.details["stdout_bytes"], 2_000_000);
    assert_eq!(output.details["stderr_bytes"], 2_000_005);
    assert!(output.content.ends_with("done"), "{}", output.content);
}
