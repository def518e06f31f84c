//! A script run on the agent's behalf rather than the model's: a task's setup phase.
//!
//! It goes through the same machinery as `run_shell_command` (the sandbox, the process
//! group and its kill, bounded output), so a setup script can neither outlive its phase
//! nor write outside the workspace; only what the phase allows differs (the network,
//! the variables it is given).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::SHELL_PROGRAM;
use super::process::{self, ShellInvocation};
use crate::error::ToolError;
use crate::sandbox::Sandbox;

/// What to run, fully decided by the caller.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    /// The command line, run with `bash -c`.
    pub script: String,
    /// The workspace: the folder it runs in and the only one it may write.
    pub workspace: PathBuf,
    /// Its complete environment.
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    /// Bytes kept per stream (head and tail).
    pub output_cap_bytes: usize,
    pub sandbox: Sandbox,
}

/// How a script ended, with what it printed.
#[derive(Debug, Clone)]
pub struct ScriptOutcome {
    /// `None` when it timed out or a signal ended it.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptOutcome {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// Runs the script to completion or its timeout; nothing it started outlives it.
pub async fn run_script(run: ScriptRun) -> Result<ScriptOutcome, ToolError> {
    let outcome = process::run(ShellInvocation {
        program: SHELL_PROGRAM.into(),
        script: run.script,
        working_dir: run.workspace.clone(),
        env: run.env,
        timeout: run.timeout,
        output_cap_bytes: run.output_cap_bytes,
        sandbox: run.sandbox,
        workspace: run.workspace,
    })
    .await?;
    Ok(ScriptOutcome {
        exit_code: outcome.exit_code(),
        timed_out: outcome.timed_out,
        duration: outcome.duration,
        stdout: outcome.stdout.into_text(),
        stderr: outcome.stderr.into_text(),
    })
}
