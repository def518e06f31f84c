//! What the agent is started with: its environment, signed URLs and deadline.
//!
//! A best-of-N attempt gets the task's check (`AGENT_CHECK`) and uploads `check.log`;
//! every attempt starts from the task's base, as the first does.
//!
//! A follow-up run (run 2 and later) also gets signed GET URLs of the previous run's
//! `diff.patch` and `trajectory.jsonl`, uploads `step.patch` besides the usual outputs,
//! and writes its outputs under its own folder ([`run_output_key`]).
//!
//! A task with a setup also gets its owner's setup secrets (`[setup_secrets]`): values in
//! the secret environment, names in `AGENT_SETUP_ENV`, for the setup alone.
//!
//! The agent holds no storage credentials: it gets one signed GET URL for the workspace
//! tarball and one signed PUT URL per output, valid at least as long as the task may run.
//! The model endpoint is passed through from the configuration; the task's own model, if
//! it names one, wins. The model key and the signed URLs are secret ([`SECRET_ENV`]):
//! they travel in the spec's secret environment, apart from the plain settings.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::ExposeSecret;

use secrecy::SecretString;

use crate::blob::BlobError;
use crate::config::OrchestratorConfig;
use crate::runner::{
    LABEL_ATTEMPT, LABEL_MANAGED_BY, LABEL_TASK_ID, LaunchSpec, MANAGED_BY, Resources, RunHandle,
};
use crate::services::Services;
use crate::task::{Task, TaskId};

use super::finish::run_output_key;

/// The outputs `agent-rs job` uploads, each to its own signed URL.
pub const OUTPUT_NAMES: [&str; 5] = [
    "diff.patch",
    "trajectory.jsonl",
    "result.json",
    "agent.log",
    "prompt.txt",
];

/// The setup script's output, uploaded when the task has one.
pub const SETUP_LOG: &str = "setup.log";

/// Where the packed workspace goes.
pub fn workspace_key(id: TaskId) -> String {
    format!("tasks/{id}/workspace.tar.gz")
}

/// The task's wall-time limit: its own, or the configured default.
pub fn task_timeout(task: &Task, config: &OrchestratorConfig) -> Duration {
    task.limits
        .timeout_secs
        .map(Duration::from_secs)
        .unwrap_or_else(|| config.default_task_timeout())
}

/// A follow-up run's own changes; its `diff.patch` is cumulative (from the base).
pub const STEP_DIFF: &str = "step.patch";

/// The check's output, uploaded by a run whose task has a check (best-of-N).
pub const CHECK_LOG: &str = "check.log";

/// The variables of the agent's environment that are secret: the model key and the
/// signed URLs (whoever holds them can read or write the task's blobs).
pub const SECRET_ENV: [&str; 5] = [
    "OPENAI_API_KEY",
    "AGENT_WORKSPACE_URL",
    "AGENT_UPLOAD_URLS",
    "AGENT_RESUME_DIFF_URL",
    "AGENT_RESUME_TRAJECTORY_URL",
];

/// How long the task may run from its launch: its timeout plus the slack that lets the
/// agent's own timeout fire and its outputs upload first.
pub fn deadline_in(task: &Task, config: &OrchestratorConfig) -> Duration {
    task_timeout(task, config) + config.reconciler.deadline_slack() + check_time(task, config)
}

/// The time a run's check may add after the agent is done.
fn check_time(task: &Task, config: &OrchestratorConfig) -> Duration {
    match task.best_of.check {
        Some(_) => config.check_timeout(),
        None => Duration::ZERO,
    }
}

/// How long the agent's signed URLs live: never shorter than the task may run.
fn url_ttl(task: &Task, config: &OrchestratorConfig) -> Duration {
    let needed = deadline_in(task, config);
    config.signed_url_ttl().max(needed)
}

/// Signed GET URLs of the previous run's `diff.patch` and `trajectory.jsonl`, for a
/// follow-up run.
#[derive(Debug, Clone)]
pub struct ResumeUrls {
    pub diff: String,
    pub trajectory: String,
}

/// The `agent-rs job` environment for `task`.
pub fn agent_env(
    task: &Task,
    config: &OrchestratorConfig,
    workspace_url: String,
    upload_urls: &BTreeMap<String, String>,
    resume: Option<ResumeUrls>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |name: &str, value: String| {
        env.insert(name.to_string(), value);
    };
    set("AGENT_TASK_ID", task.id.to_string());
    set("AGENT_TASK", task.instruction().to_string());
    if let Some(target) = &task.target_file {
        set("AGENT_TARGET_FILE", target.clone());
    }
    if let Some(setup) = &task.setup {
        set("AGENT_SETUP", setup.clone());
    }
    set("AGENT_WORKSPACE_URL", workspace_url);
    set(
        "AGENT_UPLOAD_URLS",
        serde_json::to_string(upload_urls).unwrap_or_default(),
    );
    if let Some(resume) = resume {
        set("AGENT_RESUME_DIFF_URL", resume.diff);
        set("AGENT_RESUME_TRAJECTORY_URL", resume.trajectory);
    }
    if let Some(check) = &task.best_of.check {
        set("AGENT_CHECK", check.clone());
        set(
            "AGENT_CHECK_TIMEOUT_SECS",
            config.check_timeout().as_secs().to_string(),
        );
    }
    if let Some(turns) = task.limits.max_turns {
        set("AGENT_MAX_TURNS", turns.to_string());
    }
    if let Some(tokens) = task.limits.max_tokens {
        set("AGENT_MAX_TOKENS", tokens.to_string());
    }
    set(
        "AGENT_TIMEOUT_SECS",
        task_timeout(task, config).as_secs().to_string(),
    );
    if let Some(model) = task.model.clone().or_else(|| config.model.model.clone()) {
        set("AGENT_MODEL", model);
    }
    if let Some(base_url) = &config.model.base_url {
        set("OPENAI_BASE_URL", base_url.clone());
    }
    if let Some(key) = &config.model.api_key {
        set("OPENAI_API_KEY", key.expose_secret().to_string());
    }
    env
}

/// Signs the task's URLs and builds what the runner starts as run `name`.
pub async fn launch_spec(
    services: &Services,
    task: &Task,
    name: RunHandle,
) -> Result<LaunchSpec, BlobError> {
    let ttl = url_ttl(task, &services.config);
    let workspace_url = services
        .blobs
        .signed_get_url(&workspace_key(task.id), ttl)
        .await?;
    let mut upload_urls = BTreeMap::new();
    // Best-of-N attempts after the first start from the base too, not from the last.
    let follow_up = task.run_number > 1 && !task.is_best_of();
    let step = follow_up.then_some(STEP_DIFF);
    let check = task.best_of.check.as_ref().map(|_| CHECK_LOG);
    let setup = task.setup.is_some().then_some(SETUP_LOG);
    for name in OUTPUT_NAMES
        .into_iter()
        .chain(step)
        .chain(check)
        .chain(setup)
    {
        let url = services
            .blobs
            .signed_put_url(&run_output_key(task.id, task.run_number, name), ttl)
            .await?;
        upload_urls.insert(name.to_string(), url);
    }
    // A follow-up starts from the previous run's end: its cumulative diff and its
    // conversation.
    let resume = if follow_up {
        let previous = task.run_number - 1;
        let diff = run_output_key(task.id, previous, "diff.patch");
        let trajectory = run_output_key(task.id, previous, "trajectory.jsonl");
        Some(ResumeUrls {
            diff: services.blobs.signed_get_url(&diff, ttl).await?,
            trajectory: services.blobs.signed_get_url(&trajectory, ttl).await?,
        })
    } else {
        None
    };
    let config = &services.config;
    let mut env = agent_env(task, config, workspace_url, &upload_urls, resume);
    let mut secret_env: BTreeMap<String, SecretString> = SECRET_ENV
        .iter()
        .filter_map(|name| {
            let value = env.remove(*name)?;
            Some((name.to_string(), SecretString::from(value)))
        })
        .collect();
    add_setup_secrets(task, config, &mut env, &mut secret_env);
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (LABEL_TASK_ID.to_string(), task.id.to_string()),
        (LABEL_ATTEMPT.to_string(), task.attempt.to_string()),
    ]);
    Ok(LaunchSpec {
        name,
        task_id: task.id,
        attempt: task.attempt,
        labels,
        env,
        secret_env,
        resources: Resources {
            cpu_millis: config.resources.cpu_millis,
            memory_bytes: config
                .resources
                .memory_mib
                .map(|mib| mib.saturating_mul(1024 * 1024)),
        },
        image: None,
        deadline: deadline_in(task, config),
    })
}

/// The owner's setup secrets, for a task with a setup: their values in the secret
/// environment, their names (`AGENT_SETUP_ENV`) in the plain one, so the agent gives them
/// to the setup alone.
fn add_setup_secrets(
    task: &Task,
    config: &OrchestratorConfig,
    env: &mut BTreeMap<String, String>,
    secret_env: &mut BTreeMap<String, SecretString>,
) {
    if task.setup.is_none() {
        return;
    }
    let secrets = config.setup_secrets.for_owner(&task.owner);
    if secrets.is_empty() {
        return;
    }
    let names: Vec<String> = secrets.keys().cloned().collect();
    env.insert("AGENT_SETUP_ENV".to_string(), names.join(","));
    secret_env.extend(secrets);
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;
