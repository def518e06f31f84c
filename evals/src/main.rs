//! `evals`: the command-line face of the eval tooling.
//!
//! `evals scripted-server` runs the scripted model server as its own process, for tests
//! and evals that drive the `agent-rs` binary rather than the library.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use evals::scripted::{Script, ScriptedServer};

#[derive(Debug, Parser)]
#[command(name = "evals", version, about = "Eval tooling for the agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a script as an OpenAI-compatible model until killed (SIGTERM or Ctrl-C).
    ///
    /// Prints the base URL (`http://127.0.0.1:PORT/v1`) as the first line on stdout, once
    /// the port is bound. Logs go to stderr (`RUST_LOG` filters them).
    ScriptedServer {
        /// The script file (JSON; format in the `evals::scripted` docs).
        #[arg(long)]
        script: PathBuf,
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        Command::ScriptedServer { script, listen } => serve_script(script, listen).await,
    }
}

async fn serve_script(script: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let script = Script::from_file(&script)?;
    let steps = script.steps.len();
    let server = ScriptedServer::bind(script, listen).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", server.base_url()).context("cannot write the base URL to stdout")?;
        stdout.flush().context("cannot flush stdout")?;
    }
    tracing::info!(base_url = %server.base_url(), steps, "serving script");
    shutdown_signal().await?;
    let consumed = server.steps_consumed();
    server.shutdown().await?;
    tracing::info!(consumed, steps, "scripted server stopped");
    Ok(())
}

/// Resolves on SIGTERM (how test harnesses and CI stop a service) or Ctrl-C.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C"),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")
    }
}
