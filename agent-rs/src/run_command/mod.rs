//! `agent-rs run`: one task against a local directory, outputs in a folder.
//!
//! Order matters here: everything that can be wrong with the input (the directory, the
//! output folder, the target file, the configuration) is checked before the model is
//! called, and exits with code 2. Once the loop has run, the diff, the result and the
//! trajectory are written whatever the outcome, limits and model failures included.
//!
//! The parts: `prepare.rs` checks the input and resolves the settings, `execute.rs` wires
//! the run together and runs the loop, `outputs.rs` writes what the run leaves behind
//! (diff, check, `result.json`).

mod execute;
mod outputs;
mod prepare;

use std::path::{Path, PathBuf};

use clap::Args;
use tools::{NetworkChoice, SandboxMode};

use crate::output_dir;

pub use execute::execute;
pub use prepare::{InputError, PreparedRun, ResumeInputs, prepare, resolve_sandbox};

/// Arguments of `agent-rs run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The task, in plain words.
    pub task: String,
    /// Workspace directory the agent works in.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Output folder (default: a fresh folder under the system temp dir, printed on stderr).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Model name [env: AGENT_MODEL].
    #[arg(long, env = "AGENT_MODEL")]
    pub model: Option<String>,
    /// OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 [env: OPENAI_BASE_URL].
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub base_url: Option<String>,
    /// At most this many model responses.
    #[arg(long)]
    pub max_turns: Option<u32>,
    /// Stop once this many tokens (prompt + completion) were used.
    #[arg(long)]
    pub max_tokens: Option<u64>,
    /// Wall-time limit for the whole run, in seconds.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// A file the task is about; named in the prompt.
    #[arg(long)]
    pub target_file: Option<String>,
    /// Print events as JSON lines on stdout instead of the progress view on stderr.
    #[arg(long)]
    pub json: bool,
    /// The sandbox shell commands run in: `auto` (bubblewrap, else Landlock plus seccomp;
    /// the run refuses to start when neither is usable), `bwrap`, `landlock`, or `off`
    /// (commands run with the agent's rights)
    /// [env: AGENT_SANDBOX; default: the config file's, else auto].
    #[arg(long, env = "AGENT_SANDBOX", value_parser = parse_sandbox_mode)]
    pub sandbox: Option<SandboxMode>,
    /// Whether shell commands may use the network: `off`, `on`, or
    /// `allow=HOST,HOST...` (only those hosts, through a proxy the run serves; others are
    /// answered 403 with the reason, and private addresses are never reached)
    /// [env: AGENT_NETWORK; default: the config file's, else off].
    #[arg(long, env = "AGENT_NETWORK", value_parser = parse_network)]
    pub network: Option<NetworkChoice>,
    /// A setup script run in the workspace before the agent (with `bash -c`): it has the
    /// network and the `--setup-env` variables, which the agent's commands then do not.
    /// Its output goes to setup.log; if it fails, the run fails without the model.
    #[arg(long)]
    pub setup: Option<String>,
    /// The setup's wall-time limit, in seconds [default: the config file's, else 600].
    #[arg(long)]
    pub setup_timeout: Option<u64>,
    /// A variable of this environment given to the setup only (repeat, or separate
    /// with commas).
    #[arg(long, value_delimiter = ',')]
    pub setup_env: Vec<String>,
    /// Continue the run whose output folder this is, with the task as a follow-up
    /// message: the workspace (`--dir`) must be as that run left it. The conversation
    /// so far is replayed (or summarized when too long); `diff.patch` is then the
    /// cumulative diff and `step.patch` this run's changes alone.
    #[arg(long, value_name = "OUTPUT_DIR")]
    pub resume: Option<PathBuf>,
    /// A check run (with `bash -c`) in the workspace once the agent is done and the
    /// diff written, under the agent's sandbox: its output goes to check.log and its
    /// verdict into result.json as `check` (what best-of-N attempts are ranked by).
    #[arg(long)]
    pub check: Option<String>,
    /// How long the check may run, in seconds (default 600).
    #[arg(long, value_name = "SECS")]
    pub check_timeout: Option<u64>,
    /// Set by `agent-rs job`: MCP server commands must then be the operator's.
    #[arg(skip)]
    pub job_mode: bool,
    /// Set by `agent-rs job` when resuming: the workspace is the task's base, the
    /// previous diff not applied yet.
    #[arg(skip)]
    pub resume_at_base: bool,
}

pub fn parse_sandbox_mode(text: &str) -> Result<SandboxMode, String> {
    text.parse()
}

pub fn parse_network(text: &str) -> Result<NetworkChoice, String> {
    text.parse()
}

/// The program (this binary) and arguments that carry a sandboxed command's connections
/// to the run's proxy under `--network allow=...`.
pub fn egress_relay_argv() -> std::io::Result<Vec<std::ffi::OsString>> {
    Ok(vec![
        std::env::current_exe()?.into_os_string(),
        "egress-relay".into(),
    ])
}

/// Where the log goes: `agent.log` in the output folder.
pub fn log_file(output: &Path) -> PathBuf {
    output.join(output_dir::LOG_FILE)
}
