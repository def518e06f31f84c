//! `agent-rs`: the command-line face of the agent.
//!
//! Subcommands: `tool` runs one tool by hand (debugging, scripts, benchmarks) and
//! `tools` prints the tool definitions a model is offered.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use agent_rs::config::AgentConfig;

#[derive(Debug, Parser)]
#[command(
    name = "agent-rs",
    version,
    about = "An LLM coding agent with tools, as one binary"
)]
struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, global = true, env = "AGENT_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one tool by hand and print its result.
    ///
    /// Exit code 0 when the tool succeeded, 1 when it ran and reported failure (e.g. a
    /// command exiting non-zero), 2 when the call was refused (bad arguments, path outside
    /// the workspace, unknown tool).
    Tool {
        /// Tool name, e.g. `search_code` (see `agent-rs tools`).
        name: String,
        /// Workspace root the tool is jailed in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Print the whole result as JSON instead of its text.
        #[arg(long)]
        json: bool,
    },
    /// Print the tool definitions (name, description, JSON Schema) as JSON.
    Tools,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            report_error(&err);
            ExitCode::from(agent_rs::exit::BAD_INPUT)
        }
    }
}

#[allow(clippy::print_stderr)]
fn report_error(err: &anyhow::Error) {
    eprintln!("agent-rs: {err:#}");
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Tool {
            name,
            dir,
            args,
            json,
        } => {
            let args: serde_json::Value =
                serde_json::from_str(&args).context("--args is not valid JSON")?;
            let runtime = agent_rs::runtime()?;
            runtime.block_on(agent_rs::tool_cli::run_one(
                &config, &name, &dir, args, json,
            ))
        }
        Command::Tools => agent_rs::tool_cli::print_specs(&config),
    }
}
