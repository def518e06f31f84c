//! `run_shell_command`: the model runs a command line with `bash -c` in the workspace.
//!
//! This is the agent's most general tool (build, test, git, scripts), so it is also the
//! one that must be fenced most carefully. This module checks the call (arguments, the
//! working directory through the jail, the timeout within its maximum) and hands the
//! decided invocation to `process`, which owns the process lifecycle; `report` turns the
//! outcome into text for the model; `env` decides what the child inherits.
//!
//! The fences, and where each lives:
//! - the working directory is resolved through the workspace jail before anything runs;
//! - the command runs in the run's [`crate::sandbox`] (read-only outside the workspace,
//!   its own PID namespace, no network unless allowed, a process cap), and the result
//!   names the rule when the sandbox refused something;
//! - the agent's credentials are removed from the child's environment ([`child_env`]);
//! - stdin is `/dev/null`, so a command waiting for input fails instead of hanging;
//! - a timeout, and a kill of the whole process group at the end of every call
//!   (timeout, normal exit or cancellation), and of the processes that left the group,
//!   found by a mark in their environment, so no process outlives the call;
//! - output is capped per stream, keeping its head and tail.

mod direct;
mod env;
pub(crate) mod escaped;
mod process;
mod report;
mod script;
mod served;

use std::num::NonZeroU64;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

pub use self::env::child_env;
use self::process::ShellInvocation;
use self::report::TimeoutChoice;
pub use self::script::{ScriptOutcome, ScriptRun, run_script};
use crate::config::ShellConfig;
use crate::error::ToolError;
use crate::tool::{Tool, ToolContext, ToolOutput, parse_args, schema_for};

const TOOL_NAME: &str = "run_shell_command";

/// The shell every command runs in, looked up on the child's `PATH`.
const SHELL_PROGRAM: &str = "bash";

/// The `run_shell_command` tool.
#[derive(Debug, Default)]
pub struct ShellTool;

// The arguments' contract. The field doc comments become the descriptions the model reads
// in the JSON Schema, so they are written for the model (and this note is not a doc
// comment, to stay out of the schema).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ShellArgs {
    /// The command line, run with `bash -c`. Pipes, `&&`, redirections and subshells work.
    /// It cannot read input: stdin is empty.
    command_string: String,
    /// Directory to run in, relative to the workspace root. Defaults to the root.
    #[serde(default = "workspace_root")]
    target_directory: String,
    /// Seconds before the command and every process it started are killed. Defaults to
    /// 120 unless configured otherwise; values above the configured maximum are lowered.
    timeout_seconds: Option<NonZeroU64>,
}

fn workspace_root() -> String {
    ".".to_string()
}

#[async_trait]
impl Tool for ShellTool {
    fn name(&self) -> &'static str {
        TOOL_NAME
    }

    fn description(&self) -> &'static str {
        "Run a shell command with `bash -c` in a directory of the workspace and get its exit \
         code, stdout and stderr (separately). Use it to build, run tests, use git, or run any \
         program in the workspace. Stdin is empty, so interactive programs cannot be used. \
         Long output keeps only its beginning and end: redirect big output to a file and \
         search it. When the command finishes or times out, every process it started is \
         killed, including ones sent to the background with `&`: nothing keeps running \
         between calls. Credentials of the agent are not in the command's environment. \
         Commands normally run in a sandbox: only the workspace (not its .git) and /tmp are \
         writable, other processes are invisible, and the network is off unless the run \
         allows it; the result says when the sandbox refused something."
    }

    fn parameters(&self) -> serde_json::Value {
        schema_for::<ShellArgs>()
    }

    fn mutates(&self) -> bool {
        true
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: ShellArgs = parse_args(TOOL_NAME, args)?;
        if args.command_string.trim().is_empty() {
            return Err(ToolError::InvalidArguments {
                tool: TOOL_NAME,
                message: "command_string is empty; give the command line to run".to_string(),
            });
        }
        let config = &ctx.config.shell;
        let working_dir = ctx.jail.resolve(&args.target_directory)?;
        check_is_directory(&working_dir, &args.target_directory)?;
        let timeout = choose_timeout(args.timeout_seconds, config);

        let invocation = ShellInvocation {
            program: SHELL_PROGRAM.into(),
            script: args.command_string,
            working_dir,
            env: env::own_child_env(&config.secret_env_vars),
            timeout: Duration::from_secs(timeout.secs),
            output_cap_bytes: config.output_cap_bytes,
            sandbox: ctx.sandbox.clone(),
            workspace: ctx.jail.root().to_path_buf(),
        };
        let outcome = process::run(invocation).await?;
        Ok(report::render(outcome, timeout, &ctx.sandbox.summary()))
    }
}

/// A clear refusal for a missing directory or a file, before bash would give a vaguer one.
///
/// One `stat` of a folder the jail has just resolved (reading it, as the jail did), so it
/// runs here rather than on the blocking pool, whose thread handoff cost more than the
/// call and kept a thread (its stack and memory arena) alive for nothing.
fn check_is_directory(path: &std::path::Path, requested: &str) -> Result<(), ToolError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ToolError::rejected(format!(
            "target_directory `{requested}` is a file, not a directory; give a directory \
             relative to the workspace root (or omit it to run in the root)"
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err(ToolError::rejected(format!(
                "target_directory `{requested}` does not exist; create it first or give an \
                 existing directory relative to the workspace root"
            )))
        }
        Err(source) => Err(ToolError::io(
            "cannot inspect target_directory",
            requested,
            source,
        )),
    }
}

/// The model's timeout, or the configured default, never above the configured maximum.
fn choose_timeout(requested: Option<NonZeroU64>, config: &ShellConfig) -> TimeoutChoice {
    let max = config.max_timeout_secs;
    match requested.map(NonZeroU64::get) {
        Some(secs) if secs > max => TimeoutChoice {
            secs: max,
            clamped_from: Some(secs),
        },
        Some(secs) => TimeoutChoice {
            secs,
            clamped_from: None,
        },
        None => TimeoutChoice {
            secs: config.default_timeout_secs.min(max),
            clamped_from: None,
        },
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
