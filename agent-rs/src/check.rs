//! The check phase: a command (the repository's tests, say) run in the workspace as the
//! agent left it, whose verdict ranks best-of-N attempts.
//!
//! It runs after `diff.patch` is written, so what it produces (caches, build output) is
//! never part of the diff, and under the agent's own rules: the same sandbox, the same
//! network setting, no credentials in its environment. Its output goes to `check.log`
//! (redacted); its verdict goes into `result.json` as `check`. The agent's own exit code
//! does not change with it: a failed check is a ranking fact, not a failed run.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tools::shell::{ScriptRun, child_env, run_script};
use tools::{Sandbox, SecretRedactor};

use crate::output_dir::OutputDir;
use crate::setup::{last_bytes, section};

/// The file the check's output goes to.
pub const CHECK_LOG_FILE: &str = "check.log";
/// How long a check may run unless told otherwise.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(600);
/// Bytes of each stream kept in the log (head and tail).
const LOG_CAP_BYTES: usize = 1 << 20;
/// Bytes of the log's end kept in `result.json`.
const TAIL_BYTES: usize = 2_000;

/// How the check ended, as `result.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckReport {
    pub command: String,
    /// Exit code 0 within the time limit.
    pub passed: bool,
    /// `None` when it timed out, a signal ended it, or it could not start.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    /// The end of `check.log` (redacted).
    pub log_tail: String,
}

/// What the check runs with.
pub struct CheckContext<'a> {
    pub workspace: &'a Path,
    /// The agent's sandbox, network setting included.
    pub sandbox: &'a Sandbox,
    pub env_vars: &'a [(String, String)],
    /// Names never passed to commands (the agent's credentials, the setup's variables).
    pub secret_env_vars: &'a [String],
    pub output: &'a OutputDir,
    pub redactor: &'a SecretRedactor,
}

/// Runs `command` with `bash -c` in the workspace and writes `check.log`.
pub async fn run(command: &str, timeout: Duration, ctx: &CheckContext<'_>) -> CheckReport {
    let env = child_env(
        ctx.env_vars
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        ctx.secret_env_vars,
    );
    let run = ScriptRun {
        script: command.to_string(),
        workspace: ctx.workspace.to_path_buf(),
        env,
        timeout,
        output_cap_bytes: LOG_CAP_BYTES,
        sandbox: ctx.sandbox.clone(),
    };
    tracing::info!(timeout_secs = timeout.as_secs(), "check started");
    let (log, report) = match run_script(run).await {
        Ok(outcome) => {
            let ending = if outcome.timed_out {
                format!("timed out after {}s; killed", timeout.as_secs())
            } else {
                match outcome.exit_code {
                    Some(code) => format!("exit code {code}"),
                    None => "killed by a signal".to_string(),
                }
            };
            let log = ctx.redactor.redact(&format!(
                "$ {command}\n{}{}== {ending} after {:.2}s ==\n",
                section("stdout", &outcome.stdout),
                section("stderr", &outcome.stderr),
                outcome.duration.as_secs_f64()
            ));
            let report = CheckReport {
                command: command.to_string(),
                passed: outcome.success(),
                exit_code: outcome.exit_code,
                timed_out: outcome.timed_out,
                duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
                log_tail: tail_of(&log),
            };
            (log, report)
        }
        Err(err) => {
            let message = ctx
                .redactor
                .redact(&format!("the check could not run: {err}"));
            let report = CheckReport {
                command: command.to_string(),
                passed: false,
                exit_code: None,
                timed_out: false,
                duration_ms: 0,
                log_tail: message.clone(),
            };
            (format!("$ {command}\n{message}\n"), report)
        }
    };
    if let Err(err) = ctx.output.write(CHECK_LOG_FILE, log.as_bytes()) {
        tracing::error!(%err, "cannot write check.log");
    }
    tracing::info!(passed = report.passed, exit_code = ?report.exit_code, "check finished");
    report
}

/// The last [`TAIL_BYTES`] bytes of `log`, cut on a character boundary.
fn tail_of(log: &str) -> String {
    last_bytes(log, TAIL_BYTES).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_cut_on_a_character_boundary() {
        let log = "é".repeat(3_000);
        let tail = tail_of(&log);
        assert!(tail.len() <= TAIL_BYTES && !tail.is_empty());
        assert!(tail.chars().all(|c| c == 'é'));
        assert_eq!(tail_of("short"), "short");
    }
}
