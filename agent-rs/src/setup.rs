//! The setup phase: a task's script (install dependencies, build) that runs before the
//! agent, with what the agent phase does not get.
//!
//! The model: Codex cloud's. A setup script is the task author's, not the model's, so it
//! may have the network and the secrets the task declares (a registry token, say); the
//! agent phase after it has neither (its commands run with the run's own network setting,
//! and the declared variables are removed from their environment). The script runs in
//! the same sandbox as the agent's commands otherwise: it writes only the workspace, and
//! nothing it starts outlives it. It runs before the workspace is snapshotted, so what it
//! produces (`node_modules/`, a build) is the starting state, not part of the diff.
//!
//! Its output goes to `setup.log` in the output folder (redacted); when it fails, the run
//! fails without calling the model, and the error carries the log's last lines.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use tools::shell::{ScriptRun, child_env, run_script};
use tools::{NetworkAccess, Sandbox, SecretRedactor};

use crate::events::{AgentEvent, RunStatus, Timing};
use crate::model::Usage;
use crate::output_dir::OutputDir;
use crate::run::RunOutcome;
use crate::sink::EventSink;

/// The file the setup's output goes to.
pub const SETUP_LOG_FILE: &str = "setup.log";
/// Bytes of each stream kept in the log (head and tail).
const LOG_CAP_BYTES: usize = 1 << 20;
/// Lines of the log's end carried in the error and the event.
const TAIL_LINES: usize = 20;
/// Bytes of the log's end carried at most.
const TAIL_BYTES: usize = 4_000;

/// A setup phase, as decided from flags, config and environment.
#[derive(Debug, Clone)]
pub struct SetupSpec {
    pub script: String,
    /// Variables of the agent's environment handed to the setup only.
    pub env_names: Vec<String>,
    pub timeout: Duration,
}

/// How the setup ended.
#[derive(Debug, Clone)]
pub struct SetupReport {
    pub success: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    /// The last lines of `setup.log` (redacted).
    pub log_tail: String,
    /// Why it failed, for `result.json`; `None` on success.
    pub error: Option<String>,
}

/// What the setup runs with.
pub struct SetupContext<'a> {
    pub workspace: &'a Path,
    /// The agent phase's sandbox; the setup gets it with the network on.
    pub sandbox: &'a Sandbox,
    /// The agent's environment.
    pub env_vars: &'a [(String, String)],
    /// Names never passed to commands (the agent's credentials).
    pub secret_env_vars: &'a [String],
    pub output: &'a OutputDir,
    pub redactor: &'a SecretRedactor,
}

/// Runs the setup and writes `setup.log`.
pub async fn run(spec: &SetupSpec, ctx: &SetupContext<'_>) -> SetupReport {
    let mut env = child_env(
        ctx.env_vars
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        ctx.secret_env_vars,
    );
    for name in &spec.env_names {
        if let Some((_, value)) = ctx.env_vars.iter().find(|(key, _)| key == name) {
            env.retain(|(key, _)| key.to_str() != Some(name.as_str()));
            env.push((name.into(), value.into()));
        }
    }
    let run = ScriptRun {
        script: spec.script.clone(),
        workspace: ctx.workspace.to_path_buf(),
        env,
        timeout: spec.timeout,
        output_cap_bytes: LOG_CAP_BYTES,
        sandbox: ctx.sandbox.with_network(NetworkAccess::On),
    };
    tracing::info!(timeout_secs = spec.timeout.as_secs(), "setup started");
    let (log, report) = match run_script(run).await {
        Ok(outcome) => {
            let ending = if outcome.timed_out {
                format!("timed out after {}s; killed", spec.timeout.as_secs())
            } else {
                match outcome.exit_code {
                    Some(code) => format!("exit code {code}"),
                    None => "killed by a signal".to_string(),
                }
            };
            let log = format!(
                "$ {}\n{}{}== {ending} after {:.2}s ==\n",
                spec.script,
                section("stdout", &outcome.stdout),
                section("stderr", &outcome.stderr),
                outcome.duration.as_secs_f64()
            );
            let log = ctx.redactor.redact(&log);
            let tail = tail_of(&log);
            let error = (!outcome.success())
                .then(|| format!("setup failed ({ending}); the end of {SETUP_LOG_FILE}:\n{tail}"));
            let report = SetupReport {
                success: outcome.success(),
                exit_code: outcome.exit_code,
                timed_out: outcome.timed_out,
                duration: outcome.duration,
                log_tail: tail,
                error,
            };
            (log, report)
        }
        Err(err) => {
            let message = ctx.redactor.redact(&format!("setup could not run: {err}"));
            let report = SetupReport {
                success: false,
                exit_code: None,
                timed_out: false,
                duration: Duration::ZERO,
                log_tail: message.clone(),
                error: Some(message.clone()),
            };
            (format!("$ {}\n{message}\n", spec.script), report)
        }
    };
    if let Err(err) = ctx.output.write(SETUP_LOG_FILE, log.as_bytes()) {
        tracing::error!(%err, "cannot write setup.log");
    }
    tracing::info!(success = report.success, exit_code = ?report.exit_code, "setup finished");
    report
}

/// The outcome of a run whose setup failed: the model was never called. Emits the
/// run's `task_finished` event.
pub fn failed_outcome(error: String, sink: &mut EventSink) -> RunOutcome {
    let outcome = RunOutcome {
        status: RunStatus::Error,
        limit: None,
        turns: 0,
        usage: Usage::default(),
        duration: Duration::ZERO,
        timing: Timing::default(),
        final_message: None,
        error: Some(error),
    };
    sink.emit(AgentEvent::TaskFinished {
        status: outcome.status,
        limit: None,
        turns: 0,
        usage: outcome.usage,
        duration_ms: 0,
        final_message: None,
        error: outcome.error.clone(),
        timing: outcome.timing,
    });
    outcome
}

/// A labelled block of a command's log (`== stdout ==`), empty for empty output; the
/// check's log is laid out the same way.
pub(crate) fn section(label: &str, text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("== {label} ==\n{text}{newline}")
}

/// The last [`TAIL_LINES`] lines of `log`, at most [`TAIL_BYTES`] bytes.
fn tail_of(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    last_bytes(&lines[start..].join("\n"), TAIL_BYTES).to_string()
}

/// The last `max` bytes of `text` at most, cut on a character boundary.
pub(crate) fn last_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    &text[cut..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let log: String = (1..=50).map(|n| format!("line {n}\n")).collect();
        let tail = tail_of(&log);
        assert!(tail.starts_with("line 31\n"), "{tail}");
        assert!(tail.ends_with("line 50"), "{tail}");
    }

    #[test]
    fn a_long_last_line_is_cut_on_a_character_boundary() {
        let log = "é".repeat(5_000);
        let tail = tail_of(&log);
        assert!(tail.len() <= TAIL_BYTES);
        assert!(tail.chars().all(|c| c == 'é'));
    }
}
