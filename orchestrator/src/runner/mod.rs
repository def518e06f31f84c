//! Runners start `agent-rs job` somewhere and report what it does.
//!
//! The worker hands a [`LaunchSpec`] (environment for `agent-rs job`: task, signed URLs,
//! limits, model endpoint) to a runner, then watches the events it streams and its exit.
//! Implementations: `ProcessRunner` (a local process, embedded) and, later, a Kubernetes
//! Job runner. A handle is a string so it survives in the task row: after a restart the
//! reconciler asks the runner whether that handle is still alive.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use crate::task::TaskId;

pub mod process;

pub use process::ProcessRunner;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot launch the agent: {0}")]
    Launch(String),
    #[error("unknown run `{0}`")]
    UnknownRun(String),
    #[error("runner failure: {0}")]
    Other(String),
}

/// What to run.
#[derive(Clone)]
pub struct LaunchSpec {
    pub task_id: TaskId,
    /// `agent-rs job` environment: `AGENT_TASK_ID`, `AGENT_TASK`, `AGENT_WORKSPACE_URL`,
    /// `AGENT_UPLOAD_URLS`, limits, `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `AGENT_MODEL`...
    /// Values may be secret: never log them.
    pub env: BTreeMap<String, String>,
}

/// Names only: the values hold the model key and signed URLs.
impl std::fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("task_id", &self.task_id)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A launched run, by the name the runner gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunHandle(pub String);

/// What a watched run reports.
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerEvent {
    /// One JSON event line `agent-rs` printed.
    AgentEvent(serde_json::Value),
    /// The run ended with this exit code (`None`: killed or lost).
    Exited { code: Option<i32> },
}

#[async_trait]
pub trait Runner: Send + Sync + 'static {
    async fn launch(&self, spec: LaunchSpec) -> Result<RunHandle, RunnerError>;

    /// The run's events, ending with `Exited`. Only one watcher per run.
    async fn watch(
        &self,
        handle: &RunHandle,
    ) -> Result<BoxStream<'static, RunnerEvent>, RunnerError>;

    /// Stops the run (kills the process group / deletes the Job). Idempotent.
    async fn cancel(&self, handle: &RunHandle) -> Result<(), RunnerError>;

    /// Whether the run still exists (the reconciler's question after a restart).
    async fn is_alive(&self, handle: &RunHandle) -> Result<bool, RunnerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_spec_debug_shows_names_not_values() {
        let spec = LaunchSpec {
            task_id: TaskId::new(),
            env: BTreeMap::from([("OPENAI_API_KEY".to_string(), "sk-very-secret".to_string())]),
        };
        let text = format!("{spec:?}");
        assert!(
            text.contains("OPENAI_API_KEY") && !text.contains("sk-very-secret"),
            "{text}"
        );
    }
}
