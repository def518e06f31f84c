//! `agent-rs`: the command-line face of the agent.
//!
//! Subcommands: `run` works on a task in a local directory; `job` runs a task for the
//! orchestrator (settings from the environment, workspace and outputs over presigned
//! URLs, see `agent-rs job --help`); `tool` runs one tool by hand (debugging, scripts,
//! benchmarks); `tools` prints the tool definitions a model is offered; `schema` prints
//! the JSON Schema of the trajectory events; `install` copies the binary into a folder
//! (how a `FROM scratch` image hands it to another container).
//!
//! Exit codes (a contract): 0 completed, 1 other failure, 2 bad usage or input,
//! 3 a limit reached, 4 the model failed, 5 (`job`) the object store stayed unreachable.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use agent_rs::config::AgentConfig;
use agent_rs::job::{JobArgs, JobIo};
use agent_rs::run_command::RunArgs;

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
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Work on a task in a local directory; leave diff, trajectory, result and log behind.
    ///
    /// The model endpoint comes from OPENAI_BASE_URL and OPENAI_API_KEY (or the config
    /// file); the model from --model or AGENT_MODEL.
    Run(Box<RunArgs>),
    /// Run a task for the orchestrator: settings from the environment, workspace and
    /// outputs over presigned URLs, events as JSON lines on stdout.
    #[command(long_about = agent_rs::job::LONG_ABOUT)]
    Job(Box<JobArgs>),
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
        /// The sandbox shell commands run in: auto, bwrap, landlock or off (as for `run`).
        #[arg(long, env = "AGENT_SANDBOX", value_parser = agent_rs::run_command::parse_sandbox_mode)]
        sandbox: Option<tools::SandboxMode>,
        /// Whether shell commands may use the network: off, on or allow=HOST,... (as for
        /// `run`).
        #[arg(long, env = "AGENT_NETWORK", value_parser = agent_rs::run_command::parse_network)]
        network: Option<tools::NetworkChoice>,
    },
    /// Print the tool definitions (name, description, JSON Schema) as JSON.
    Tools,
    /// Print the JSON Schema of one trajectory event (the `--json` lines).
    Schema,
    /// Copy this executable (and the files named with --with) into DIR: how a container
    /// image without `cp` hands `agent-rs` to another image through a shared volume.
    Install {
        /// The folder to copy into (it must exist).
        dir: PathBuf,
        /// A file to copy along (the CA bundle); repeatable.
        #[arg(long)]
        with: Vec<PathBuf>,
    },
    /// Inside a command's sandbox under `--network allow=...`: relay a loopback port to
    /// the run's proxy socket, run the command, exit with its status.
    #[command(hide = true)]
    EgressRelay {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Inside a run's sandbox: start the run's shell commands on the agent's requests.
    #[command(name = "sandbox-server", hide = true)]
    SandboxServer {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    // The sandbox server, started once per run as `agent-rs sandbox-server ARGS...`, goes
    // straight to serving: building the parser of the whole command line cost it a third
    // of its start-up. Every argument after the name is its own, as through clap.
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(std::ffi::OsStr::new(agent_rs::sandbox_server::SUBCOMMAND)) {
        return agent_rs::sandbox_server::serve(&args.collect::<Vec<_>>());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                agent_rs::exit::BAD_INPUT
            } else {
                agent_rs::exit::COMPLETED
            });
        }
    };
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
    // Inside a command's sandbox, before anything reads the configuration (its file may
    // be hidden there).
    if let Command::EgressRelay {
        socket,
        listen,
        command,
    } = cli.command
    {
        return egress_relay(socket, listen, &command);
    }
    if let Command::SandboxServer { args } = &cli.command {
        return Ok(agent_rs::sandbox_server::serve(args));
    }
    let config = AgentConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Tool {
            name,
            dir,
            args,
            json,
            sandbox,
            network,
        } => {
            let args: serde_json::Value =
                serde_json::from_str(&args).context("--args is not valid JSON")?;
            let env_vars: Vec<(String, String)> = std::env::vars().collect();
            let sandbox =
                agent_rs::run_command::resolve_sandbox(sandbox, network, &config, &env_vars, None)?;
            let runtime = agent_rs::runtime()?;
            runtime.block_on(agent_rs::tool_cli::run_one(
                &config, &name, &dir, args, json, sandbox,
            ))
        }
        Command::Tools => agent_rs::tool_cli::print_specs(&config),
        Command::Schema => print_schema(),
        Command::Install { dir, with } => {
            agent_rs::install::install(&dir, &with)?;
            Ok(ExitCode::from(agent_rs::exit::COMPLETED))
        }
        Command::EgressRelay { .. } | Command::SandboxServer { .. } => {
            Ok(ExitCode::from(agent_rs::exit::BAD_INPUT))
        }
        Command::Run(args) => {
            agent_rs::orphans::adopt();
            let code = run_task(&args, &config);
            agent_rs::orphans::end_children();
            code
        }
        Command::Job(args) => {
            agent_rs::orphans::adopt();
            let code = agent_rs::job::run_job(
                &args,
                &config,
                JobIo {
                    api_key: std::env::var("OPENAI_API_KEY").ok(),
                    env_vars: std::env::vars().collect(),
                    stdout: Box::new(std::io::stdout()),
                    stderr: Box::new(std::io::stderr()),
                },
            );
            agent_rs::orphans::end_children();
            Ok(ExitCode::from(code))
        }
    }
}

fn egress_relay(
    socket: PathBuf,
    listen: std::net::SocketAddr,
    command: &[std::ffi::OsString],
) -> anyhow::Result<ExitCode> {
    // One thread: the command's process cap counts the relay's threads too.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(tools::egress::relay::run_command_behind(
        socket, listen, command,
    ))?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

#[allow(clippy::print_stdout)]
fn print_schema() -> anyhow::Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&agent_rs::events::event_schema())?
    );
    Ok(ExitCode::from(agent_rs::exit::COMPLETED))
}

#[allow(clippy::print_stderr)]
fn run_task(args: &RunArgs, config: &AgentConfig) -> anyhow::Result<ExitCode> {
    let prepared = agent_rs::run_command::prepare(
        args,
        config,
        std::env::var("OPENAI_API_KEY").ok(),
        std::env::vars(),
    )?;
    let output = prepared.output.path().to_path_buf();
    if prepared.output_was_defaulted {
        eprintln!("agent-rs: output folder {}", output.display());
    }
    agent_rs::logging::init_file_logging(
        &agent_rs::run_command::log_file(&output),
        prepared.redactor.clone(),
    )
    .context("cannot create agent.log")?;
    let runtime = agent_rs::runtime()?;
    let (task_args, task_config) = (args.clone(), config.clone());
    let result = agent_rs::block_on_task(&runtime, async move {
        agent_rs::run_command::execute(
            &task_args,
            &task_config,
            prepared,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
        )
        .await
    });
    match result {
        Ok(result) => {
            for warning in result.diff_warnings() {
                eprintln!("agent-rs: {warning}");
            }
            if !args.json {
                eprintln!("agent-rs: outputs in {}", output.display());
            }
            Ok(ExitCode::from(result.exit_code))
        }
        Err(err) => {
            eprintln!("agent-rs: {err:#}");
            // A workspace that is not where the resumed run left it: nothing ran.
            let code = if err.is::<agent_rs::resume::ResumeError>() {
                agent_rs::exit::BAD_INPUT
            } else {
                agent_rs::exit::OTHER_ERROR
            };
            Ok(ExitCode::from(code))
        }
    }
}
