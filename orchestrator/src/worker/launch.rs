//! What the agent is started with: its environment, signed URLs and deadline.
//!
//! The agent holds no storage credentials: it gets one signed GET URL for the workspace
//! tarball and one signed PUT URL per output, valid at least as long as the task may run.
//! The model endpoint is passed through from the configuration; the task's own model, if
//! it names one, wins.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::blob::BlobError;
use crate::config::OrchestratorConfig;
use crate::runner::LaunchSpec;
use crate::services::Services;
use crate::task::{Task, TaskId};

use super::finish::output_key;

/// The outputs `agent-rs job` uploads, each to its own signed URL.
pub const OUTPUT_NAMES: [&str; 5] = [
    "diff.patch",
    "trajectory.jsonl",
    "result.json",
    "agent.log",
    "prompt.txt",
];

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

/// When the task must be over (ms since the epoch): its timeout plus the slack that lets
/// the agent's own timeout fire and its outputs upload first.
pub fn deadline_at(now_ms: i64, task: &Task, config: &OrchestratorConfig) -> i64 {
    let total = task_timeout(task, config) + config.reconciler.deadline_slack();
    now_ms.saturating_add(i64::try_from(total.as_millis()).unwrap_or(i64::MAX))
}

/// How long the agent's signed URLs live: never shorter than the task may run.
fn url_ttl(task: &Task, config: &OrchestratorConfig) -> Duration {
    let needed = task_timeout(task, config) + config.reconciler.deadline_slack();
    config.signed_url_ttl().max(needed)
}

/// The `agent-rs job` environment for `task`.
pub fn agent_env(
    task: &Task,
    config: &OrchestratorConfig,
    workspace_url: String,
    upload_urls: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |name: &str, value: String| {
        env.insert(name.to_string(), value);
    };
    set("AGENT_TASK_ID", task.id.to_string());
    set("AGENT_TASK", task.description.clone());
    if let Some(target) = &task.target_file {
        set("AGENT_TARGET_FILE", target.clone());
    }
    set("AGENT_WORKSPACE_URL", workspace_url);
    set(
        "AGENT_UPLOAD_URLS",
        serde_json::to_string(upload_urls).unwrap_or_default(),
    );
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

/// Signs the task's URLs and builds what the runner starts.
pub async fn launch_spec(services: &Services, task: &Task) -> Result<LaunchSpec, BlobError> {
    let ttl = url_ttl(task, &services.config);
    let workspace_url = services
        .blobs
        .signed_get_url(&workspace_key(task.id), ttl)
        .await?;
    let mut upload_urls = BTreeMap::new();
    for name in OUTPUT_NAMES {
        let url = services
            .blobs
            .signed_put_url(&output_key(task.id, name), ttl)
            .await?;
        upload_urls.insert(name.to_string(), url);
    }
    Ok(LaunchSpec {
        task_id: task.id,
        env: agent_env(task, &services.config, workspace_url, &upload_urls),
    })
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;
