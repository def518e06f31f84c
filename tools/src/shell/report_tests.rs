use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use super::*;

/// `wait(2)` status words: exit code in the second byte, a signal number in the first.
fn exited(code: i32) -> ExitStatus {
    ExitStatus::from_raw(code << 8)
}

fn killed_by(signal: i32) -> ExitStatus {
    ExitStatus::from_raw(signal)
}

fn buffer(cap: usize, bytes: &[u8]) -> HeadTailBuffer {
    let mut buffer = HeadTailBuffer::new(cap);
    buffer.push(bytes);
    buffer
}

fn outcome(status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> ShellOutcome {
    ShellOutcome {
        git_restored: false,
        status,
        timed_out: false,
        background_killed: false,
        background_survived: false,
        process_cap_hit: false,
        duration: Duration::from_millis(1_234),
        stdout: buffer(1_000, stdout),
        stderr: buffer(1_000, stderr),
    }
}

fn render_plain(outcome: ShellOutcome, timeout: TimeoutChoice) -> ToolOutput {
    render(outcome, timeout, &crate::sandbox::Sandbox::off().summary())
}

const PLAIN: TimeoutChoice = TimeoutChoice {
    secs: 120,
    clamped_from: None,
};

#[test]
fn exit_zero_is_success_with_both_streams_labelled() {
    let output = render_plain(outcome(exited(0), b"hello\n", b"warning"), PLAIN);
    assert!(output.success);
    assert_eq!(
        output.content,
        "exit code: 0\nduration: 1.23s\nstdout:\nhello\nstderr:\nwarning"
    );
    assert_eq!(output.details["exit_code"], 0);
    assert_eq!(output.details["duration_ms"], 1_234);
    assert_eq!(output.details["stdout_bytes"], 6);
    assert_eq!(output.details["stderr_bytes"], 7);
    assert!(output.details.get("signal").is_none());
}

#[test]
fn non_zero_exit_is_a_failure_and_empty_streams_say_so() {
    let output = render_plain(outcome(exited(3), b"", b""), PLAIN);
    assert!(!output.success);
    assert_eq!(
        output.content,
        "exit code: 3\nduration: 1.23s\nstdout: (empty)\nstderr: (empty)"
    );
    assert_eq!(output.details["exit_code"], 3);
    assert_eq!(output.details["timed_out"], false);
}

#[test]
fn timeout_reports_no_exit_code_and_the_kill() {
    let mut timed_out = outcome(killed_by(9), b"partial", b"");
    timed_out.timed_out = true;
    let output = render_plain(
        timed_out,
        TimeoutChoice {
            secs: 5,
            clamped_from: None,
        },
    );
    assert!(!output.success);
    assert!(
        output
            .content
            .starts_with("timed out after 5s; process group killed\n"),
        "{}",
        output.content
    );
    assert!(output.content.contains("stdout:\npartial"));
    assert_eq!(output.details["exit_code"], serde_json::Value::Null);
    assert_eq!(output.details["timed_out"], true);
    assert_eq!(output.details["signal"], "SIGKILL");
}

#[test]
fn death_by_signal_is_named() {
    let output = render_plain(outcome(killed_by(11), b"", b""), PLAIN);
    assert!(!output.success);
    assert!(
        output
            .content
            .starts_with("killed by SIGSEGV (no exit code)\n"),
        "{}",
        output.content
    );
    assert_eq!(output.details["exit_code"], serde_json::Value::Null);
    assert_eq!(output.details["signal"], "SIGSEGV");
}

#[test]
fn clamped_timeout_is_explained() {
    let output = render_plain(
        outcome(exited(0), b"", b""),
        TimeoutChoice {
            secs: 600,
            clamped_from: Some(9_000),
        },
    );
    assert!(output.content.contains(
        "note: timeout_seconds 9000 is above the maximum of 600; the command ran with a 600s timeout"
    ));
    assert_eq!(output.details["timeout_secs"], 600);
    assert_eq!(output.details["timeout_clamped"], true);
}

#[test]
fn killed_background_process_is_explained() {
    let mut background = outcome(exited(0), b"started\n", b"");
    background.background_killed = true;
    let output = render_plain(background, PLAIN);
    assert!(output.success);
    assert!(output.content.contains("note: a background process"));
    assert_eq!(output.details["background_killed"], true);
}

#[test]
fn truncated_stream_keeps_head_and_tail_and_counts_the_rest() {
    let mut big = outcome(exited(0), b"", b"");
    big.stdout = buffer(10, b"0123456789abcdefghijklmnopqrstuvwxyz");
    let output = render_plain(big, PLAIN);
    assert!(
        output
            .content
            .contains("stdout:\n01234\n[... 26 bytes truncated ...]\nvwxyz\n"),
        "{}",
        output.content
    );
    assert!(output.content.contains("note: stdout was 36 bytes"));
    assert_eq!(output.details["stdout_bytes"], 36);
    assert_eq!(output.details["stdout_truncated_bytes"], 26);
    assert_eq!(output.details["stderr_truncated_bytes"], 0);
}
