//! `agent-rs tool` and `agent-rs tools`: the tools without a model.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tools::{SecretRedactor, ToolContext, ToolError, ToolRegistry, WorkspaceJail};

use crate::config::AgentConfig;
use crate::exit;

/// Runs one tool call in `dir` and prints the result on stdout.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub async fn run_one(
    config: &AgentConfig,
    name: &str,
    dir: &Path,
    args: serde_json::Value,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let redactor =
        SecretRedactor::from_env_vars(std::env::vars(), &config.tools.shell.secret_env_vars);
    let registry = ToolRegistry::builtin(&config.tools)?.with_redactor(redactor);
    let jail = WorkspaceJail::new(dir).with_context(|| format!("workspace `{}`", dir.display()))?;
    let ctx = ToolContext::new(jail, Arc::new(config.tools.clone()));
    match registry.call(&ctx, name, args).await {
        Ok(output) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&output)?);
            } else {
                println!("{}", output.content);
            }
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
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                eprintln!("{name}: {err}");
            }
            Ok(ExitCode::from(exit::BAD_INPUT))
        }
    }
}

/// Prints every tool's definition as a JSON array.
#[allow(clippy::print_stdout)]
pub fn print_specs(config: &AgentConfig) -> anyhow::Result<ExitCode> {
    let registry =
        ToolRegistry::builtin(&config.tools).map_err(|err: ToolError| anyhow::anyhow!(err))?;
    println!("{}", serde_json::to_string_pretty(&registry.specs())?);
    Ok(ExitCode::from(exit::COMPLETED))
}
