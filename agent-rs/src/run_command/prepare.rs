//! Checking a run's input and resolving its settings, before anything runs: every
//! failure here is the caller's (exit code 2), reported before the model is called.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tools::{NetworkChoice, Sandbox, SandboxMode, SecretRedactor, WorkspaceJail};

use super::RunArgs;
use crate::config::AgentConfig;
use crate::mcp::{self, ServerSpec};
use crate::model::ModelSettings;
use crate::output_dir::OutputDir;
use crate::resume::{PreviousRun, Restored, ResumeError, restore_conversation};
use crate::run::{ContextBudget, RunLimits};
use crate::setup::SetupSpec;

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
    let sandbox = resolve_sandbox(
        args.sandbox,
        args.network.clone(),
        config,
        &env_vars,
        // A job's workspace arrives after this (its download): a server started now
        // would not fit it once it has a `.git`.
        (!args.job_mode).then(|| jail.root()),
    )?;
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
/// install) when none is usable and the run did not ask for `off`. With the run's
/// `workspace`, its commands' server is started now, as the check that the sandbox
/// works (see [`Sandbox::resolve_serving`]).
pub fn resolve_sandbox(
    mode: Option<SandboxMode>,
    network: Option<NetworkChoice>,
    config: &AgentConfig,
    env_vars: &[(String, String)],
    workspace: Option<&Path>,
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
    let search_path = Some(std::ffi::OsStr::new(&path));
    match workspace {
        Some(workspace) => Sandbox::resolve_serving(
            &wanted,
            home.as_deref(),
            search_path,
            crate::sandbox_server::argv(),
            workspace,
        ),
        None => Sandbox::resolve(&wanted, home.as_deref(), search_path)
            .map(|sandbox| sandbox.with_server_program(crate::sandbox_server::argv())),
    }
    .map_err(|err| InputError(err.to_string()))
}
