//! The job's settings, read from the environment and checked before anything runs.
//!
//! clap collects the raw values (so `agent-rs job --help` lists every variable), but
//! every one arrives here as text: parsing it ourselves lets each error name the
//! variable that was wrong, which is all an operator reading a failed Job's log has.
//! Nothing here touches the network or the disk.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use url::Url;

use crate::output_dir;

use super::urls;

/// The files a job can upload, in upload order: `agent.log` last, so it holds the
/// record of the other uploads.
pub const UPLOADABLE_OUTPUTS: [&str; 8] = [
    crate::setup::SETUP_LOG_FILE,
    crate::check::CHECK_LOG_FILE,
    output_dir::STEP_DIFF_FILE,
    output_dir::PROMPT_FILE,
    output_dir::DIFF_FILE,
    output_dir::TRAJECTORY_FILE,
    output_dir::RESULT_FILE,
    output_dir::LOG_FILE,
];

/// Largest workspace archive accepted, compressed or unpacked, unless configured.
pub const DEFAULT_MAX_WORKSPACE_BYTES: u64 = 1 << 30;
/// Most entries (files, directories, links) a workspace archive may hold, unless configured.
pub const DEFAULT_MAX_WORKSPACE_ENTRIES: u64 = 500_000;

/// Raw settings of `agent-rs job`. Each is normally set through its environment
/// variable; the flag of the same name exists for trying a job by hand. Values are
/// hidden from `--help` output because some are credentials.
#[derive(Debug, Clone, Default, Args)]
pub struct JobArgs {
    /// Task id, for logs (required).
    #[arg(long, env = "AGENT_TASK_ID", hide_env_values = true)]
    pub task_id: Option<String>,
    /// The instruction for the agent, in plain words (required).
    #[arg(long, env = "AGENT_TASK", hide_env_values = true)]
    pub task: Option<String>,
    /// A file the task is about, relative to the workspace root; named in the prompt.
    #[arg(long, env = "AGENT_TARGET_FILE", hide_env_values = true)]
    pub target_file: Option<String>,
    /// http(s) URL (a presigned GET) of the workspace as a .tar.gz (required).
    #[arg(long, env = "AGENT_WORKSPACE_URL", hide_env_values = true)]
    pub workspace_url: Option<String>,
    /// JSON object: output file name -> presigned PUT URL, for any of diff.patch,
    /// trajectory.jsonl, result.json, agent.log, prompt.txt (required).
    #[arg(long, env = "AGENT_UPLOAD_URLS", hide_env_values = true)]
    pub upload_urls: Option<String>,
    /// Continuing a previous run: http(s) URL (a presigned GET) of its `diff.patch`,
    /// applied to the workspace before the agent starts (with the next one).
    #[arg(long, env = "AGENT_RESUME_DIFF_URL", hide_env_values = true)]
    pub resume_diff_url: Option<String>,
    /// Continuing a previous run: URL of its `trajectory.jsonl`, the conversation the
    /// agent continues with AGENT_TASK as the follow-up message.
    #[arg(long, env = "AGENT_RESUME_TRAJECTORY_URL", hide_env_values = true)]
    pub resume_trajectory_url: Option<String>,
    /// Where the workspace is extracted; must be empty or absent (default: a fresh
    /// temporary folder, removed at the end).
    #[arg(long, env = "AGENT_WORK_DIR", hide_env_values = true)]
    pub work_dir: Option<PathBuf>,
    /// At most this many model responses.
    #[arg(long, env = "AGENT_MAX_TURNS", hide_env_values = true)]
    pub max_turns: Option<String>,
    /// Stop once this many tokens (prompt + completion) were used.
    #[arg(long, env = "AGENT_MAX_TOKENS", hide_env_values = true)]
    pub max_tokens: Option<String>,
    /// Wall-time limit for the agent loop, in seconds.
    #[arg(long, env = "AGENT_TIMEOUT_SECS", hide_env_values = true)]
    pub timeout_secs: Option<String>,
    /// Largest workspace accepted, as downloaded and as unpacked, in bytes (default 1 GiB).
    #[arg(long, env = "AGENT_MAX_WORKSPACE_BYTES", hide_env_values = true)]
    pub max_workspace_bytes: Option<String>,
    /// Most entries the workspace archive may hold (default 500000).
    #[arg(long, env = "AGENT_MAX_WORKSPACE_ENTRIES", hide_env_values = true)]
    pub max_workspace_entries: Option<String>,
    /// How long transient download failures (store unreachable, 5xx, timeouts) are
    /// retried, in seconds (default 30); past it the job exits 5.
    #[arg(long, env = "AGENT_DOWNLOAD_RETRY_SECS", hide_env_values = true)]
    pub download_retry_secs: Option<String>,
    /// Model name.
    #[arg(long, env = "AGENT_MODEL", hide_env_values = true)]
    pub model: Option<String>,
    /// OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.
    #[arg(long, env = "OPENAI_BASE_URL", hide_env_values = true)]
    pub base_url: Option<String>,
    /// The shell commands' sandbox: auto (default; bubblewrap or refuse), bwrap or off.
    #[arg(long, env = "AGENT_SANDBOX", hide_env_values = true)]
    pub sandbox: Option<String>,
    /// Whether shell commands may use the network: off (default), on, or
    /// allow=HOST,HOST... (those hosts only, through a proxy).
    #[arg(long, env = "AGENT_NETWORK", hide_env_values = true)]
    pub network: Option<String>,
    /// A setup script run in the workspace before the agent, with the network on.
    #[arg(long, env = "AGENT_SETUP", hide_env_values = true)]
    pub setup: Option<String>,
    /// Comma-separated names of variables of this environment given to the setup only.
    #[arg(long, env = "AGENT_SETUP_ENV", hide_env_values = true)]
    pub setup_env: Option<String>,
    /// A check run in the workspace once the agent is done (its verdict ranks
    /// best-of-N attempts), as `--check` of `run`.
    #[arg(long, env = "AGENT_CHECK", hide_env_values = true)]
    pub check: Option<String>,
    /// How long the check may run, in seconds (default 600).
    #[arg(long, env = "AGENT_CHECK_TIMEOUT_SECS", hide_env_values = true)]
    pub check_timeout_secs: Option<String>,
    /// A Unix socket where the runner's egress proxy listens (sandboxed runs).
    #[arg(long, env = "AGENT_EGRESS_SOCKET", hide_env_values = true)]
    pub egress_socket: Option<PathBuf>,
    /// The loopback address relayed to the egress socket (default 127.0.0.1:3128).
    #[arg(long, env = "AGENT_EGRESS_LISTEN", hide_env_values = true)]
    pub egress_listen: Option<String>,
}

/// A job's settings, checked.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub task_id: String,
    pub task: String,
    pub target_file: Option<String>,
    pub workspace_url: Url,
    /// Output file name -> where to PUT it; names are among [`UPLOADABLE_OUTPUTS`].
    pub upload_urls: BTreeMap<String, Url>,
    /// The previous run's `diff.patch` and `trajectory.jsonl`, when this job continues it.
    pub resume: Option<ResumeUrls>,
    pub work_dir: Option<PathBuf>,
    pub max_turns: Option<u32>,
    pub max_tokens: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub max_workspace_bytes: u64,
    pub max_workspace_entries: u64,
    /// How long transient download failures are retried.
    pub download_retry: std::time::Duration,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub sandbox: Option<tools::SandboxMode>,
    pub network: Option<tools::NetworkChoice>,
    pub setup: Option<String>,
    pub setup_env: Vec<String>,
    pub check: Option<String>,
    pub check_timeout_secs: Option<u64>,
    /// The egress relay, when the runner gave one.
    pub egress: Option<super::egress::EgressRelay>,
}

/// Where a continued run's record is.
#[derive(Debug, Clone)]
pub struct ResumeUrls {
    pub diff: Url,
    pub trajectory: Url,
}

/// A setting that is missing or malformed; the message names its variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl JobSpec {
    pub fn from_args(args: &JobArgs) -> Result<Self, SpecError> {
        let task_id = required(&args.task_id, "AGENT_TASK_ID", "the task's id, for logs")?;
        let task = required(&args.task, "AGENT_TASK", "the instruction for the agent")?;
        let workspace_url = required(
            &args.workspace_url,
            "AGENT_WORKSPACE_URL",
            "a URL of the workspace as a .tar.gz",
        )?;
        let workspace_url = http_url(&workspace_url, "AGENT_WORKSPACE_URL")?;
        let upload_urls = required(
            &args.upload_urls,
            "AGENT_UPLOAD_URLS",
            "a JSON object mapping output file names to presigned PUT URLs",
        )?;
        let upload_urls = parse_upload_urls(&upload_urls)?;
        let resume = match (
            non_empty(&args.resume_diff_url),
            non_empty(&args.resume_trajectory_url),
        ) {
            (None, None) => None,
            (Some(diff), Some(trajectory)) => Some(ResumeUrls {
                diff: http_url(&diff, "AGENT_RESUME_DIFF_URL")?,
                trajectory: http_url(&trajectory, "AGENT_RESUME_TRAJECTORY_URL")?,
            }),
            _ => {
                return Err(SpecError(
                    "AGENT_RESUME_DIFF_URL and AGENT_RESUME_TRAJECTORY_URL go together: give both or neither".into(),
                ));
            }
        };
        let max_turns = optional_number::<u32>(&args.max_turns, "AGENT_MAX_TURNS")?;
        let max_tokens = optional_number::<u64>(&args.max_tokens, "AGENT_MAX_TOKENS")?;
        let timeout_secs = optional_number::<u64>(&args.timeout_secs, "AGENT_TIMEOUT_SECS")?;
        let max_workspace_bytes =
            optional_number::<u64>(&args.max_workspace_bytes, "AGENT_MAX_WORKSPACE_BYTES")?
                .unwrap_or(DEFAULT_MAX_WORKSPACE_BYTES);
        let max_workspace_entries =
            optional_number::<u64>(&args.max_workspace_entries, "AGENT_MAX_WORKSPACE_ENTRIES")?
                .unwrap_or(DEFAULT_MAX_WORKSPACE_ENTRIES);
        let base_url = non_empty(&args.base_url);
        if let Some(base_url) = &base_url
            && !(base_url.starts_with("http://") || base_url.starts_with("https://"))
        {
            return Err(SpecError(
                "OPENAI_BASE_URL is not an http(s) URL; set it to an OpenAI-compatible endpoint such as http://localhost:8000/v1".into(),
            ));
        }
        Ok(Self {
            task_id,
            task,
            target_file: non_empty(&args.target_file),
            workspace_url,
            upload_urls,
            resume,
            work_dir: args
                .work_dir
                .clone()
                .filter(|dir| !dir.as_os_str().is_empty()),
            max_turns,
            max_tokens,
            timeout_secs,
            max_workspace_bytes,
            max_workspace_entries,
            download_retry: optional_number::<u64>(
                &args.download_retry_secs,
                "AGENT_DOWNLOAD_RETRY_SECS",
            )?
            .map(std::time::Duration::from_secs)
            .unwrap_or(super::http::DEFAULT_DOWNLOAD_RETRY),
            model: non_empty(&args.model),
            base_url,
            sandbox: optional_parsed(&args.sandbox, "AGENT_SANDBOX")?,
            network: optional_parsed(&args.network, "AGENT_NETWORK")?,
            setup: non_empty(&args.setup),
            setup_env: non_empty(&args.setup_env)
                .map(|names| {
                    names
                        .split(',')
                        .map(|name| name.trim().to_string())
                        .filter(|name| !name.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            check: non_empty(&args.check),
            check_timeout_secs: optional_number::<u64>(
                &args.check_timeout_secs,
                "AGENT_CHECK_TIMEOUT_SECS",
            )?,
            egress: egress_relay(args)?,
        })
    }

    /// Every URL the job was given: their query strings are credentials.
    pub fn urls(&self) -> impl Iterator<Item = &Url> {
        std::iter::once(&self.workspace_url)
            .chain(self.upload_urls.values())
            .chain(
                self.resume
                    .iter()
                    .flat_map(|resume| [&resume.diff, &resume.trajectory]),
            )
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.trim().is_empty())
}

fn required(value: &Option<String>, name: &str, what: &str) -> Result<String, SpecError> {
    non_empty(value).ok_or_else(|| SpecError(format!("{name} is not set; it must hold {what}")))
}

/// A positive whole number. Zero is refused: no limit of 0 makes sense.
fn optional_number<T>(value: &Option<String>, name: &str) -> Result<Option<T>, SpecError>
where
    T: std::str::FromStr + PartialEq + From<u8>,
{
    let Some(text) = non_empty(value) else {
        return Ok(None);
    };
    match text.trim().parse::<T>() {
        Ok(number) if number != T::from(0) => Ok(Some(number)),
        _ => Err(SpecError(format!(
            "{name} is `{}`; it must be a whole number of at least 1",
            text.trim()
        ))),
    }
}

fn egress_relay(args: &JobArgs) -> Result<Option<super::egress::EgressRelay>, SpecError> {
    let Some(socket) = args
        .egress_socket
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
    else {
        return Ok(None);
    };
    let listen = non_empty(&args.egress_listen).unwrap_or_else(|| "127.0.0.1:3128".to_string());
    let listen = listen.trim().parse::<std::net::SocketAddr>().map_err(|_| {
        SpecError(format!(
            "AGENT_EGRESS_LISTEN is `{listen}`; it must be an address and port such as 127.0.0.1:3128"
        ))
    })?;
    Ok(Some(super::egress::EgressRelay { socket, listen }))
}

/// A word among a setting's choices (its `FromStr` error lists them).
fn optional_parsed<T>(value: &Option<String>, name: &str) -> Result<Option<T>, SpecError>
where
    T: std::str::FromStr<Err = String>,
{
    non_empty(value)
        .map(|text| {
            text.parse::<T>()
                .map_err(|err| SpecError(format!("{name}: {err}")))
        })
        .transpose()
}

/// Parses an http(s) URL without ever echoing it: it may carry a signature.
fn http_url(text: &str, name: &str) -> Result<Url, SpecError> {
    let url = Url::parse(text.trim())
        .map_err(|err| SpecError(format!("{name} is not a valid URL ({err})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SpecError(format!(
            "{name} must be an http(s) URL with a host, not `{}`",
            urls::redacted(&url)
        )));
    }
    Ok(url)
}

fn parse_upload_urls(text: &str) -> Result<BTreeMap<String, Url>, SpecError> {
    // serde_json's message can quote the input, which holds credentials: keep only where.
    let raw: BTreeMap<String, String> = serde_json::from_str(text).map_err(|err| {
        SpecError(format!(
            "AGENT_UPLOAD_URLS must be a JSON object mapping output file names to URL strings, \
             e.g. {{\"diff.patch\": \"https://...\"}}; it is not (line {}, column {})",
            err.line(),
            err.column()
        ))
    })?;
    raw.into_iter()
        .map(|(name, url)| {
            if !UPLOADABLE_OUTPUTS.contains(&name.as_str()) {
                return Err(SpecError(format!(
                    "AGENT_UPLOAD_URLS names `{name}`, which is not an output; the outputs are {}",
                    UPLOADABLE_OUTPUTS.join(", ")
                )));
            }
            let url = http_url(&url, &format!("AGENT_UPLOAD_URLS[\"{name}\"]"))?;
            Ok((name, url))
        })
        .collect()
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
