//! `agent-rs run`: one task against a local directory, outputs in a folder.
//!
//! Order matters here: everything that can be wrong with the input (the directory, the
//! output folder, the target file, the configuration) is checked before the model is
//! called, and exits with code 2. Once the loop has run, the diff, the result and the
//! trajectory are written whatever the outcome, limits and model failures included.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use tools::{SecretRedactor, ToolContext, ToolRegistry, WorkspaceJail};

use crate::config::AgentConfig;
use crate::events::AgentEvent;
use crate::model::{ModelClient, ModelSettings};
use crate::output_dir::{self, OutputDir};
use crate::progress::ProgressView;
use crate::prompt::{PromptInputs, read_agents_md};
use crate::result::RunResult;
use crate::run::{AgentLoop, ContextBudget, RunLimits, render_first_request};
use crate::sink::EventSink;
use crate::workspace_diff::WorkspaceSnapshot;

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
}

/// A failure before the loop: bad input, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Everything resolved from flags, environment and configuration.
pub struct PreparedRun {
    pub jail: WorkspaceJail,
    pub output: OutputDir,
    pub output_was_defaulted: bool,
    pub settings: ModelSettings,
    pub limits: RunLimits,
    pub budget: ContextBudget,
    pub target_file: Option<String>,
    pub redactor: SecretRedactor,
}

/// Checks the input and resolves settings. `env_api_key` is `OPENAI_API_KEY`, passed in so
/// this stays testable; `env_vars` feed the secret redactor.
pub fn prepare(
    args: &RunArgs,
    config: &AgentConfig,
    env_api_key: Option<String>,
    env_vars: impl IntoIterator<Item = (String, String)>,
) -> Result<PreparedRun, InputError> {
    if args.task.trim().is_empty() {
        return Err(InputError("the task is empty".into()));
    }
    let jail = WorkspaceJail::new(&args.dir).map_err(|err| InputError(err.to_string()))?;
    let output = OutputDir::prepare(args.output.as_deref(), jail.root())
        .map_err(|err| InputError(err.to_string()))?;
    if let Some(target) = &args.target_file {
        jail.resolve(target)
            .map_err(|err| InputError(format!("--target-file: {err}")))?;
    }
    let model = &config.model;
    let api_key = env_api_key
        .filter(|key| !key.is_empty())
        .map(SecretString::from)
        .or_else(|| model.api_key.clone());
    let base_url = args
        .base_url
        .clone()
        .unwrap_or_else(|| model.base_url.clone());
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(InputError(format!(
            "model endpoint `{base_url}` is not an http(s) URL; set OPENAI_BASE_URL or --base-url"
        )));
    }
    let settings = ModelSettings {
        base_url,
        api_key: api_key.clone(),
        model: args.model.clone().unwrap_or_else(|| model.model.clone()),
        request_timeout: Duration::from_secs(model.request_timeout_secs),
        max_retries: model.max_retries,
        max_retry_elapsed: Duration::from_secs(model.max_retry_elapsed_secs),
        retry_base_delay: Duration::from_millis(model.retry_base_delay_ms),
        retry_max_delay: Duration::from_millis(model.retry_max_delay_ms),
        temperature: model.temperature,
        max_output_tokens: model.max_output_tokens,
    };
    let run = &config.run;
    let limits = RunLimits {
        max_turns: args.max_turns.unwrap_or(run.max_turns),
        max_tokens: args.max_tokens.or(run.max_tokens),
        timeout: Duration::from_secs(args.timeout.unwrap_or(run.timeout_secs)),
    };
    if limits.max_turns == 0 || limits.timeout.is_zero() {
        return Err(InputError(
            "--max-turns and --timeout must be at least 1".into(),
        ));
    }
    let mut redactor = SecretRedactor::from_env_vars(env_vars, &config.tools.shell.secret_env_vars);
    if let Some(key) = &api_key {
        redactor =
            redactor.with_named_secrets([("OPENAI_API_KEY", key.expose_secret().to_string())]);
    }
    Ok(PreparedRun {
        output_was_defaulted: args.output.is_none(),
        jail,
        output,
        settings,
        limits,
        budget: ContextBudget::new(model.context_window),
        target_file: args.target_file.clone(),
        redactor,
    })
}

/// Runs the task; returns the result written to `result.json`. Errors here are failures
/// of the run's own machinery (writing outputs), not of the task.
pub async fn execute(
    args: &RunArgs,
    config: &AgentConfig,
    prepared: PreparedRun,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
) -> anyhow::Result<RunResult> {
    let PreparedRun {
        jail,
        output,
        settings,
        limits,
        budget,
        target_file,
        redactor,
        ..
    } = prepared;
    let snapshot = Arc::new(WorkspaceSnapshot::capture(jail.root())?);
    let registry = ToolRegistry::builtin(&config.tools)?.with_redactor(redactor.clone());
    let ctx = ToolContext::new(jail.clone(), Arc::new(config.tools.clone()))
        .with_write_observer(snapshot.clone());
    let model_name = settings.model.clone();
    let client = ModelClient::new(settings)?;

    let layout = registry
        .call(
            &ctx,
            "list_directory",
            serde_json::json!({"path": ".", "depth": 2}),
        )
        .await
        .map(|out| out.content)
        .unwrap_or_else(|err| format!("(layout unavailable: {err})"));
    let inputs = PromptInputs {
        task: args.task.clone(),
        target_file: target_file.clone(),
        workspace_layout: layout,
        agents_md: read_agents_md(jail.root()),
    };
    let messages = AgentLoop::opening_messages(&inputs);
    output.write(
        output_dir::PROMPT_FILE,
        redactor
            .redact(&render_first_request(&messages, &registry))
            .as_bytes(),
    )?;

    let trajectory = std::fs::File::create(output.file(output_dir::TRAJECTORY_FILE))?;
    let mut sink = EventSink::new(
        Box::new(std::io::BufWriter::new(trajectory)),
        redactor.clone(),
    );
    sink = if args.json {
        sink.with_json_stream(stdout)
    } else {
        sink.with_progress(ProgressView::new(stderr))
    };
    sink.emit(AgentEvent::TaskStarted {
        task: args.task.clone(),
        model: model_name.clone(),
        workspace: jail.root().display().to_string(),
        target_file,
        max_turns: limits.max_turns,
        max_tokens: limits.max_tokens,
        timeout_secs: limits.timeout.as_secs(),
        tools: registry.names().map(str::to_string).collect(),
    });

    tracing::info!(model = %model_name, workspace = %jail.root().display(), "run started");
    let agent = AgentLoop {
        client: &client,
        registry: &registry,
        ctx: &ctx,
        limits,
        budget,
    };
    let outcome = agent.run(messages, &mut sink).await;
    tracing::info!(status = ?outcome.status, turns = outcome.turns, "run finished");

    let mut result = RunResult::from_outcome(&outcome, &model_name);
    write_diff(&snapshot, &output, &redactor, &mut result)?;
    output.write(
        output_dir::RESULT_FILE,
        redactor
            .redact(&serde_json::to_string_pretty(&result)?)
            .as_bytes(),
    )?;
    if let Some(err) = sink.take_write_error() {
        anyhow::bail!("could not write the trajectory: {err}");
    }
    Ok(result)
}

/// Writes `diff.patch` as it is (a redacted patch would not apply) and records in the
/// result what it leaves out and which secrets it holds.
fn write_diff(
    snapshot: &WorkspaceSnapshot,
    output: &OutputDir,
    redactor: &SecretRedactor,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    let diff = match snapshot.diff() {
        Ok(diff) => diff,
        Err(err) => {
            tracing::error!(%err, "diff failed");
            result
                .error
                .get_or_insert_with(|| format!("could not compute the diff: {err}"));
            return Ok(());
        }
    };
    output.write(output_dir::DIFF_FILE, diff.patch.as_bytes())?;
    result.files_changed = Some(diff.files_changed);
    result.diff_secrets = secrets_in_patch(&diff.patch, redactor);
    result.diff_left_out = diff.left_out;
    for warning in result.diff_warnings() {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// The secrets a patch holds: the known values anywhere in it (by placeholder), then the
/// kinds of credentials its added lines look like.
fn secrets_in_patch(patch: &str, redactor: &SecretRedactor) -> Vec<String> {
    let mut found = redactor.secrets_in(patch);
    let added: String = patch
        .lines()
        .filter(|line| line.starts_with('+') && !line.starts_with("+++"))
        .map(|line| format!("{}\n", redactor.redact(line)))
        .collect();
    found.extend(
        tools::redact::known_formats_in(&added)
            .into_iter()
            .map(|kind| format!("what looks like a {kind} on an added line")),
    );
    found
}

/// Where the log goes: `agent.log` in the output folder.
pub fn log_file(output: &Path) -> PathBuf {
    output.join(output_dir::LOG_FILE)
}
