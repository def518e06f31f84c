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
use tools::{
    NetworkChoice, Sandbox, SandboxMode, SecretRedactor, ToolContext, ToolRegistry, WorkspaceJail,
};

use crate::config::AgentConfig;
use crate::events::AgentEvent;
use crate::mcp::{self, McpServers, ServerSpec, StartContext};
use crate::model::{ModelClient, ModelSettings, ToolCalling, tool_instructions};
use crate::output_dir::{self, OutputDir};
use crate::progress::ProgressView;
use crate::prompt::{PromptInputs, read_agents_md};
use crate::result::RunResult;
use crate::resume::{
    Baselines, PreviousRun, Restored, ResumeError, WorkspaceState, prepare_baselines,
    restore_conversation,
};
use crate::run::{AgentLoop, ContextBudget, RunLimits, Toolbox, render_first_request};
use crate::setup::{SetupContext, SetupSpec};
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
    /// The configured MCP servers, checked.
    pub mcp_servers: Vec<ServerSpec>,
    /// The process environment, for MCP servers (passed on without its credentials).
    pub env_vars: Vec<(String, String)>,
    /// The sandbox shell commands run in, checked to work.
    pub sandbox: Sandbox,
    /// The setup phase, when the task has one.
    pub setup: Option<SetupSpec>,
    /// What a resumed run starts from.
    pub resume: Option<ResumeInputs>,
}

/// A resumed run's inputs, read and checked before anything runs.
pub struct ResumeInputs {
    /// The previous run's cumulative diff.
    pub previous_diff: String,
    pub conversation: Restored,
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
    let previous = match &args.resume {
        Some(dir) => Some(PreviousRun::load(dir).map_err(|err| InputError(err.to_string()))?),
        None => None,
    };
    let output = OutputDir::prepare(args.output.as_deref(), jail.root())
        .map_err(|err| InputError(err.to_string()))?;
    if let Some(dir) = &args.resume
        && dir.canonicalize().is_ok_and(|dir| dir == output.path())
    {
        return Err(InputError(
            "--output must not be the folder given to --resume (that run's record would be overwritten)"
                .into(),
        ));
    }
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
        token_limit_field: model.token_limit_field,
        reasoning_effort: model.reasoning_effort.clone(),
        stream_usage: model.stream_usage,
        tool_schema: model.tool_schema,
        tool_calling: model.tool_calling,
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
    let mcp_servers = config.mcp.server_specs().map_err(InputError)?;
    let env_vars: Vec<(String, String)> = env_vars.into_iter().collect();
    let sandbox = resolve_sandbox(args.sandbox, args.network.clone(), config, &env_vars)?;
    let setup = setup_spec(args, config);
    let mut redactor = SecretRedactor::from_env_vars(
        env_vars.iter().cloned(),
        &config.tools.shell.secret_env_vars,
    )
    .with_secrets(mcp::config_secrets(
        &config.mcp,
        &config.tools.shell.secret_env_vars,
    ));
    if let Some(key) = &api_key {
        redactor =
            redactor.with_named_secrets([("OPENAI_API_KEY", key.expose_secret().to_string())]);
    }
    if let Some(setup) = &setup {
        redactor = redactor.with_named_secrets(
            env_vars
                .iter()
                .filter(|(name, value)| setup.env_names.contains(name) && !value.is_empty())
                .cloned(),
        );
    }
    let resume = match (previous, &args.resume) {
        (Some(previous), Some(dir)) => {
            let conversation =
                restore_conversation(&previous.events, &args.task, model.context_window)
                    .ok_or_else(|| InputError(ResumeError::NoTask(dir.clone()).to_string()))?;
            Some(ResumeInputs {
                previous_diff: previous.diff,
                conversation,
            })
        }
        _ => None,
    };
    Ok(PreparedRun {
        resume,
        output_was_defaulted: args.output.is_none(),
        jail,
        output,
        settings,
        limits,
        budget: ContextBudget::new(model.context_window),
        target_file: args.target_file.clone(),
        redactor,
        mcp_servers,
        env_vars,
        sandbox,
        setup,
    })
}

/// The setup phase from the flags, else the config file; none when neither has a script.
fn setup_spec(args: &RunArgs, config: &AgentConfig) -> Option<SetupSpec> {
    let script = args
        .setup
        .clone()
        .or_else(|| config.run.setup.clone())
        .filter(|script| !script.trim().is_empty())?;
    let mut env_names: Vec<String> = config.run.setup_env.clone();
    env_names.extend(args.setup_env.iter().cloned());
    env_names.retain(|name| !name.trim().is_empty());
    env_names.dedup();
    Some(SetupSpec {
        script,
        env_names,
        timeout: Duration::from_secs(
            args.setup_timeout
                .unwrap_or(config.run.setup_timeout_secs)
                .max(1),
        ),
    })
}

/// The run's sandbox: flags over the config file; refused (exit 2, saying what to
/// install) when none is usable and the run did not ask for `off`.
pub fn resolve_sandbox(
    mode: Option<SandboxMode>,
    network: Option<NetworkChoice>,
    config: &AgentConfig,
    env_vars: &[(String, String)],
) -> Result<Sandbox, InputError> {
    let mut wanted = config.tools.sandbox.clone();
    if let Some(mode) = mode {
        wanted.mode = mode;
    }
    if let Some(network) = network {
        wanted.network = network.access;
        if !network.allow_hosts.is_empty() {
            wanted.allow_hosts = network.allow_hosts;
        }
    }
    let var = |name: &str| {
        env_vars
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let home = var("HOME").map(PathBuf::from);
    let path = var("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string());
    Sandbox::resolve(&wanted, home.as_deref(), Some(std::ffi::OsStr::new(&path)))
        .map_err(|err| InputError(err.to_string()))
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
        mcp_servers,
        env_vars,
        sandbox,
        setup,
        resume,
        ..
    } = prepared;
    // The setup's variables never reach the agent's commands.
    let mut tools_config = config.tools.clone();
    if let Some(setup) = &setup {
        tools_config
            .shell
            .secret_env_vars
            .extend(setup.env_names.iter().cloned());
    }
    // Served until the run ends; the setup, with the whole network, does not use it.
    let _egress_proxy = sandbox.serve_egress_proxy(egress_relay_argv()?)?;
    // Before the snapshot: what the setup makes is the starting state, not the diff.
    let setup_report = match &setup {
        Some(spec) => Some(
            crate::setup::run(
                spec,
                &SetupContext {
                    workspace: jail.root(),
                    sandbox: &sandbox,
                    env_vars: &env_vars,
                    secret_env_vars: &config.tools.shell.secret_env_vars,
                    output: &output,
                    redactor: &redactor,
                },
            )
            .await,
        ),
        None => None,
    };
    let baselines = match &resume {
        Some(resume) => {
            let state = if args.resume_at_base {
                WorkspaceState::AtBase
            } else {
                WorkspaceState::AtEnd
            };
            prepare_baselines(jail.root(), &resume.previous_diff, state)?
        }
        None => {
            let snapshot = Arc::new(WorkspaceSnapshot::capture(jail.root())?);
            Baselines {
                base: snapshot.clone(),
                step: snapshot,
            }
        }
    };
    let registry = ToolRegistry::builtin(&config.tools)?.with_redactor(redactor.clone());
    let sandbox_summary = sandbox.summary();
    let check_sandbox = args.check.as_ref().map(|_| sandbox.clone());
    let check_secret_names = tools_config.shell.secret_env_vars.clone();
    let ctx = ToolContext::new(jail.clone(), Arc::new(tools_config))
        .with_write_observer(baselines.observer())
        .with_sandbox(sandbox);
    let model_name = settings.model.clone();
    let client = ModelClient::new(settings)?;
    let mcp = start_mcp_servers(mcp_servers, args, config, &env_vars, jail.root(), &registry).await;
    let toolbox = Toolbox::new(&registry, mcp.as_ref(), redactor.clone());

    let mut messages = opening_messages(
        args,
        resume.as_ref(),
        &registry,
        &ctx,
        &jail,
        target_file.clone(),
        mcp.as_ref(),
    )
    .await;
    if let Some(resume) = &resume {
        messages.truncate(1);
        messages.extend(resume.conversation.history.iter().cloned());
    }
    write_prompt(&output, &redactor, &messages, &toolbox, &client)?;

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
        tools: toolbox.names(),
        sandbox: Some(sandbox_summary.clone()),
    });
    if let Some(resume) = &resume {
        sink.emit(AgentEvent::ConversationResumed {
            original_task: resume.conversation.original_task.clone(),
            summarized: resume.conversation.summarized,
            history: resume.conversation.history.clone(),
        });
    }
    for report in mcp.iter().flat_map(McpServers::reports) {
        sink.emit(AgentEvent::mcp_server(report));
    }

    if let Some(report) = &setup_report {
        sink.emit(AgentEvent::SetupFinished {
            success: report.success,
            exit_code: report.exit_code,
            timed_out: report.timed_out,
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            log_tail: report.log_tail.clone(),
        });
    }

    tracing::info!(model = %model_name, workspace = %jail.root().display(), "run started");
    let setup_summary = setup_report
        .as_ref()
        .map(|report| crate::result::SetupSummary {
            success: report.success,
            exit_code: report.exit_code,
            timed_out: report.timed_out,
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        });
    let outcome = match setup_report.and_then(|report| report.error) {
        Some(error) => crate::setup::failed_outcome(error, &mut sink),
        None => {
            let agent = AgentLoop {
                client: &client,
                tools: &toolbox,
                ctx: &ctx,
                limits,
                budget,
            };
            agent.run(messages, &mut sink).await
        }
    };
    tracing::info!(status = ?outcome.status, turns = outcome.turns, "run finished");
    if let Some(mcp) = &mcp {
        mcp.shutdown().await;
    }

    let mut result = RunResult::from_outcome(&outcome, &model_name);
    result.sandbox = Some(sandbox_summary);
    result.setup = setup_summary;
    write_diff(&baselines.base, &output, &redactor, &mut result)?;
    if resume.is_some() {
        write_step_diff(&baselines.step, &output, &mut result)?;
    }
    // After the diff: what the check leaves in the workspace is not the agent's change.
    if let (Some(command), Some(sandbox)) = (&args.check, &check_sandbox) {
        let timeout = args
            .check_timeout
            .map(std::time::Duration::from_secs)
            .unwrap_or(crate::check::DEFAULT_CHECK_TIMEOUT);
        let ctx = crate::check::CheckContext {
            workspace: jail.root(),
            sandbox,
            env_vars: &env_vars,
            secret_env_vars: &check_secret_names,
            output: &output,
            redactor: &redactor,
        };
        result.check = Some(crate::check::run(command, timeout, &ctx).await);
    }
    result.process = crate::process_usage::ProcessUsage::now();
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

/// Starts the configured MCP servers (none: `None`).
async fn start_mcp_servers(
    specs: Vec<ServerSpec>,
    args: &RunArgs,
    config: &AgentConfig,
    env_vars: &[(String, String)],
    workspace: &Path,
    registry: &ToolRegistry,
) -> Option<McpServers> {
    if specs.is_empty() {
        return None;
    }
    let ctx = StartContext {
        workspace,
        env_vars,
        secret_env_vars: &config.tools.shell.secret_env_vars,
        job_mode: args.job_mode,
    };
    Some(McpServers::start(specs, &ctx, registry.names()).await)
}

/// The system and user messages: instructions, workspace layout, `AGENTS.md`, MCP
/// servers, the task (a resumed run's system prompt is written for its first task).
async fn opening_messages(
    args: &RunArgs,
    resume: Option<&ResumeInputs>,
    registry: &ToolRegistry,
    ctx: &ToolContext,
    jail: &WorkspaceJail,
    target_file: Option<String>,
    mcp: Option<&McpServers>,
) -> Vec<crate::model::ChatMessage> {
    let layout = registry
        .call(
            ctx,
            "list_directory",
            serde_json::json!({"path": ".", "depth": 2}),
        )
        .await
        .map(|out| out.content)
        .unwrap_or_else(|err| format!("(layout unavailable: {err})"));
    let inputs = PromptInputs {
        task: resume.map_or_else(
            || args.task.clone(),
            |resume| resume.conversation.original_task.clone(),
        ),
        target_file,
        workspace_layout: layout,
        agents_md: read_agents_md(jail.root()),
        mcp_servers: mcp.map(McpServers::reports).unwrap_or_default(),
    };
    AgentLoop::opening_messages(&inputs)
}

/// `prompt.txt`: the first request as the model gets it.
fn write_prompt(
    output: &OutputDir,
    redactor: &SecretRedactor,
    messages: &[crate::model::ChatMessage],
    toolbox: &Toolbox<'_>,
    client: &ModelClient,
) -> Result<(), output_dir::OutputDirError> {
    let specs = toolbox.specs();
    let mut text = render_first_request(messages, &specs);
    if client.settings().tool_calling == ToolCalling::Text {
        text.push_str("\n=== tool calling: text; the system message ends with ===");
        text.push_str(&tool_instructions(&specs));
    }
    output.write(output_dir::PROMPT_FILE, redactor.redact(&text).as_bytes())
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
    result.git_hazards_disarmed =
        crate::git_hazards::disarm(snapshot.root(), snapshot.started(), snapshot.git_baseline());
    for warning in result.diff_warnings() {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// Writes `step.patch`, a resumed run's own changes; its failure is recorded as the
/// cumulative diff's is.
fn write_step_diff(
    snapshot: &WorkspaceSnapshot,
    output: &OutputDir,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    match snapshot.diff() {
        Ok(diff) => {
            output.write(output_dir::STEP_DIFF_FILE, diff.patch.as_bytes())?;
            result.step_files_changed = Some(diff.files_changed);
        }
        Err(err) => {
            tracing::error!(%err, "step diff failed");
            result
                .error
                .get_or_insert_with(|| format!("could not compute this step's diff: {err}"));
        }
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
