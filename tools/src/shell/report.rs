//! How a command's outcome is told to the model (text) and to events (details JSON).
//!
//! The text leads with how the command ended, because that is what the model decides on,
//! then any notes about what the tool did on its behalf (a clamped timeout, killed
//! background processes, truncated output), then the two streams, kept apart so the
//! model can tell an error message from regular output:
//!
//! ```text
//! exit code: 1
//! duration: 0.42s
//! stdout: (empty)
//! stderr:
//! cargo: no such command `tset`
//! ```

use serde_json::json;

use super::process::ShellOutcome;
use crate::output_cap::HeadTailBuffer;
use crate::sandbox::{SandboxSummary, blocked_action_notes};
use crate::tool::ToolOutput;

/// The timeout a command ran with, and whether the model asked for more than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeoutChoice {
    pub secs: u64,
    /// The model's request, when it was above the maximum and was lowered to `secs`.
    pub clamped_from: Option<u64>,
}

/// The call's result: `success` only for exit code 0 within the timeout.
pub(crate) fn render(
    outcome: ShellOutcome,
    timeout: TimeoutChoice,
    sandbox: &SandboxSummary,
) -> ToolOutput {
    let exit_code = outcome.exit_code();
    let signal = outcome.signal_name();
    let success = exit_code == Some(0) && !outcome.timed_out;

    let mut details = json!({
        "exit_code": exit_code,
        "timed_out": outcome.timed_out,
        "timeout_secs": timeout.secs,
        "timeout_clamped": timeout.clamped_from.is_some(),
        "background_killed": outcome.background_killed && !outcome.background_survived,
        "background_survived": outcome.background_survived,
        "sandbox": sandbox.mode,
        "process_cap_hit": outcome.process_cap_hit,
        "duration_ms": u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        "duration_us": u64::try_from(outcome.duration.as_micros()).unwrap_or(u64::MAX),
        "stdout_bytes": outcome.stdout.total_bytes(),
        "stderr_bytes": outcome.stderr.total_bytes(),
        "stdout_truncated_bytes": outcome.stdout.dropped_bytes(),
        "stderr_truncated_bytes": outcome.stderr.dropped_bytes(),
    });
    if let (Some(signal), Some(map)) = (&signal, details.as_object_mut()) {
        map.insert("signal".to_string(), json!(signal));
    }

    let mut text = String::new();
    let ending = if outcome.timed_out {
        format!("timed out after {}s; process group killed", timeout.secs)
    } else if let Some(code) = exit_code {
        format!("exit code: {code}")
    } else {
        let signal = signal.as_deref().unwrap_or("a signal");
        format!("killed by {signal} (no exit code)")
    };
    text.push_str(&ending);
    text.push('\n');
    text.push_str(&format!(
        "duration: {:.2}s\n",
        outcome.duration.as_secs_f64()
    ));

    if let Some(requested) = timeout.clamped_from {
        text.push_str(&format!(
            "note: timeout_seconds {requested} is above the maximum of {max}; the command ran with a {max}s timeout\n",
            max = timeout.secs
        ));
    }
    if outcome.background_survived {
        text.push_str(
            "note: a background process still held the output open after bash exited; it left \
             the command's process group and cleared its environment, so it could not be found \
             and killed with the call: it keeps running until the agent exits (do not rely on \
             it; processes are not meant to outlive the call)\n",
        );
    } else if outcome.background_killed {
        text.push_str(
            "note: a background process still held the output open after bash exited; it was killed \
             (processes never outlive the call, so a server started with `&` does not keep running)\n",
        );
    }
    if outcome.git_restored {
        text.push_str(
            "note: the command changed .git/hooks or .git/config, which the sandbox keeps as they \
             were (git would run what they name outside the sandbox); the change was undone\n",
        );
    }
    let printed = format!(
        "{}\n{}",
        outcome.stderr.peek_text(),
        outcome.stdout.peek_text()
    );
    for note in blocked_action_notes(sandbox, &printed, outcome.process_cap_hit) {
        text.push_str(&format!("note: {note}\n"));
    }
    for (label, buffer) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
        if buffer.dropped_bytes() > 0 {
            text.push_str(&format!(
                "note: {label} was {} bytes; only its first and last bytes are shown. \
                 To see more, redirect it to a file and search or read that file\n",
                buffer.total_bytes()
            ));
        }
    }

    push_stream(&mut text, "stdout", outcome.stdout);
    push_stream(&mut text, "stderr", outcome.stderr);
    let text = text.trim_end_matches('\n').to_string();

    let output = if success {
        ToolOutput::success(text)
    } else {
        ToolOutput::failure(text)
    };
    output.with_details(details)
}

fn push_stream(text: &mut String, label: &str, buffer: HeadTailBuffer) {
    if buffer.total_bytes() == 0 {
        text.push_str(&format!("{label}: (empty)\n"));
        return;
    }
    text.push_str(&format!("{label}:\n"));
    let body = buffer.into_text();
    text.push_str(&body);
    if !body.ends_with('\n') {
        text.push('\n');
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
