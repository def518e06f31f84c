//! `agent-rs tool` and `agent-rs tools`: the tools without a model.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use std::io::Write;

use anyhow::Context;
use tools::{Sandbox, SecretRedactor, ToolContext, ToolError, ToolRegistry, WorkspaceJail};

use crate::config::AgentConfig;
use crate::{exit, orphans};

/// Runs one tool call in `dir` and prints the result on stdout.
#[allow(clippy::print_stderr)]
pub async fn run_one(
    config: &AgentConfig,
    name: &str,
    dir: &Path,
    args: serde_json::Value,
    json: bool,
    sandbox: Sandbox,
) -> anyhow::Result<ExitCode> {
    let redactor =
        SecretRedactor::from_env_vars(std::env::vars(), &config.tools.shell.secret_env_vars);
    let registry = ToolRegistry::builtin(&config.tools)?.with_redactor(redactor);
    let jail = WorkspaceJail::new(dir).with_context(|| format!("workspace `{}`", dir.display()))?;
    let _egress_proxy = sandbox.serve_egress_proxy(crate::run_command::egress_relay_argv()?)?;
    let ctx = ToolContext::new(jail, Arc::new(config.tools.clone())).with_sandbox(sandbox);
    orphans::adopt();
    let result = registry.call(&ctx, name, args).await;
    orphans::kill_adopted();
    match result {
        Ok(output) => {
            let text = if json {
                serde_json::to_string_pretty(&output)?
            } else {
                output.content
            };
            write_stdout(&text)?;
            Ok(ExitCode::from(if output.success {
                exit::COMPLETED
            } else {
                exit::OTHER_ERROR
            }))
        }
        Err(err) if err.is_fatal() => Err(err.into()),
        Err(err) => {
            if json {
                let value = serde_json::json!({"error": err.to_string(), "success": false});
                write_stdout(&serde_json::to_string_pretty(&value)?)?;
            } else {
                eprintln!("{name}: {err}");
            }
            Ok(ExitCode::from(exit::BAD_INPUT))
        }
    }
}

/// Prints every tool's definition as a JSON array.
pub fn print_specs(config: &AgentConfig) -> anyhow::Result<ExitCode> {
    let registry =
        ToolRegistry::builtin(&config.tools).map_err(|err: ToolError| anyhow::anyhow!(err))?;
    write_stdout(&serde_json::to_string_pretty(&registry.specs())?)?;
    Ok(ExitCode::from(exit::COMPLETED))
}

/// Writes a line to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
