//! `evals`: the command-line face of the eval tooling.
//!
//! - `evals run` runs a suite against the `agent-rs` program and writes the reports;
//!   `evals compare` diffs two reports; `evals swebench` converts from and to SWE-bench
//!   (the logic lives in `evals::harness`).
//! - `evals scripted-server` runs the scripted model server as its own process, for tests
//!   and evals that drive the `agent-rs` binary rather than the library.
//!
//! Exit codes: 0 success; 1 a failed expectation (`run --check-expected`), a regression
//! (`compare`) or an I/O failure; 2 bad usage or a bad suite.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use evals::harness::{self, Comparison, ModelSource, Report, RunOptions, Suite};
use evals::scripted::{Script, ScriptedServer};

#[derive(Debug, Parser)]
#[command(name = "evals", version, about = "Eval tooling for the agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a suite of tasks against the agent and write report.json, report.md, junit.xml.
    ///
    /// With --scripted, every attempt talks to its own scripted model server playing the
    /// task's script.json (offline, deterministic: CI checks the harness and the suites
    /// this way). Without it this is the real eval: OPENAI_BASE_URL and OPENAI_API_KEY
    /// pass through from the environment to agent-rs, and --model becomes AGENT_MODEL.
    ///
    /// Exit code 0 unless --check-expected finds an outcome differing from the suite's
    /// expectations (1), or the suite or the arguments are wrong (2).
    Run(RunCli),
    /// Compare two report.json files: tasks that got better or worse, pass-rate, token,
    /// turn and time deltas. Exit code 1 on a regression.
    Compare(CompareCli),
    /// SWE-bench interop: export predictions, import instances as a suite.
    #[command(subcommand)]
    Swebench(SwebenchCli),
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

#[derive(Debug, Args)]
struct RunCli {
    /// The suite folder (suite.toml plus one folder per task).
    #[arg(long)]
    suite: PathBuf,
    /// Model name for the real eval (AGENT_MODEL); the endpoint and key come from
    /// OPENAI_BASE_URL / OPENAI_API_KEY.
    #[arg(long, conflicts_with = "scripted")]
    model: Option<String>,
    /// Answer with each task's script.json from a scripted model server.
    #[arg(long)]
    scripted: bool,
    /// At most this many attempts at once.
    #[arg(long, default_value_t = 2)]
    parallel: usize,
    /// Output folder [default: evals-out/<UTC timestamp>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only tasks whose id contains PATTERN (a glob when it holds * ? [), or tagged PATTERN.
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,
    /// Attempts per task; above 1 the report has pass@k.
    #[arg(long, default_value_t = 1, value_name = "K")]
    repeat: u32,
    /// The agent-rs program [default: next to this evals binary, else on PATH].
    #[arg(long, value_name = "PATH")]
    agent_bin: Option<PathBuf>,
    /// Exit 1 when an outcome differs from its task's `expected`, or the pass rate from
    /// suite.toml's `expected_pass_rate`.
    #[arg(long)]
    check_expected: bool,
    /// Seconds past a task's timeout_secs before the agent is killed.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    kill_grace: u64,
}

#[derive(Debug, Args)]
struct CompareCli {
    /// The baseline report.json.
    base: PathBuf,
    /// The report.json to judge.
    new: PathBuf,
    /// Largest tolerated drop of the pass rate (a share: 0.05 is 5 points).
    #[arg(long, default_value_t = 0.05)]
    threshold: f64,
    /// Also fail when any single task got worse.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Subcommand)]
enum SwebenchCli {
    /// Write SWE-bench predictions (JSON lines) from a report: each task's first
    /// attempt's diff.patch as the model_patch.
    Export {
        /// report.json of a run (its tasks/ folder must sit next to it).
        #[arg(long)]
        report: PathBuf,
        /// The predictions file to write.
        #[arg(long)]
        out: PathBuf,
        /// model_name_or_path [default: the report's model].
        #[arg(long)]
        model_name: Option<String>,
    },
    /// Turn SWE-bench instances (JSON lines) into a suite: a git clone at base_commit,
    /// the problem statement, and a generic pytest check of FAIL_TO_PASS (the official
    /// harness remains the judge).
    Import {
        #[arg(long)]
        instances: PathBuf,
        /// The suite folder to write.
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let outcome = match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::Compare(args) => compare(args),
        Command::Swebench(args) => swebench(args),
        Command::ScriptedServer { script, listen } => serve_script(script, listen)
            .await
            .map(|()| ExitCode::SUCCESS)
            .map_err(|err| (1, format!("{err:#}"))),
    };
    match outcome {
        Ok(code) => code,
        Err((code, message)) => {
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::from(code)
        }
    }
}

/// A failure: the exit code and what to tell the user.
type Failure = (u8, String);

async fn run(args: RunCli) -> Result<ExitCode, Failure> {
    let suite = Suite::load(&args.suite).map_err(|err| (2, err.to_string()))?;
    let agent_bin =
        harness::process::find_agent_binary(args.agent_bin.as_deref()).map_err(|err| (2, err))?;
    let options = RunOptions {
        model: if args.scripted {
            ModelSource::Scripted
        } else {
            ModelSource::Live { model: args.model }
        },
        parallel: args.parallel,
        out_dir: args.out.unwrap_or_else(harness::runner::default_out_dir),
        filter: args.filter,
        repeat: args.repeat,
        agent_bin,
        kill_grace: Duration::from_secs(args.kill_grace),
    };
    let report = harness::run_suite(&suite, &options)
        .await
        .map_err(|err| (err.exit_code(), err.to_string()))?;
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{}", harness::render::summary(&report));
    let _ = writeln!(stderr, "reports in {}", options.out_dir.display());
    if args.check_expected {
        let mismatches = report.expectation_mismatches();
        if !mismatches.is_empty() {
            let _ = writeln!(stderr, "outcomes differing from the suite's expectations:");
            for mismatch in &mismatches {
                let _ = writeln!(stderr, "  {mismatch}");
            }
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn compare(args: CompareCli) -> Result<ExitCode, Failure> {
    let base = Report::read(&args.base).map_err(|err| (2, err))?;
    let new = Report::read(&args.new).map_err(|err| (2, err))?;
    let comparison = Comparison::new(&base, &new);
    let _ = write!(std::io::stdout().lock(), "{}", comparison.render());
    if comparison.regressed(args.threshold, args.strict) {
        let _ = writeln!(
            std::io::stderr(),
            "regression: the pass rate fell by more than {:.1} points{}",
            args.threshold * 100.0,
            if args.strict {
                " or a task got worse"
            } else {
                ""
            }
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn swebench(args: SwebenchCli) -> Result<ExitCode, Failure> {
    let message = match args {
        SwebenchCli::Export {
            report,
            out,
            model_name,
        } => {
            let count = harness::swebench::export(&report, &out, model_name.as_deref())
                .map_err(|err| (2, err))?;
            format!("wrote {count} prediction(s) to {}", out.display())
        }
        SwebenchCli::Import { instances, out } => {
            let count = harness::swebench::import(&instances, &out).map_err(|err| (2, err))?;
            format!("wrote a suite of {count} task(s) to {}", out.display())
        }
    };
    let _ = writeln!(std::io::stderr(), "{message}");
    Ok(ExitCode::SUCCESS)
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
