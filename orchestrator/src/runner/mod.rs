//! Runners start `agent-rs job` somewhere and report what it does.
//!
//! The contract, which every runner keeps (the local process runner, the container
//! runner and the Kubernetes Job runner):
//!
//! - **A run has a name chosen before it starts** ([`run_name`]: task id and attempt),
//!   which the worker saves in the task row before calling [`Runner::launch`]. Launch is
//!   idempotent under that name: a second launch of a name that exists starts nothing and
//!   returns the same handle. So a crash between launch and the next write leaves no run
//!   that no row names.
//! - **A run outlives the process that launched it.** [`Runner::status`] and
//!   [`Runner::watch`] work from any process that can reach the runner (after a restart,
//!   on another worker): the status is `Pending`, `Running`, `Exited` (with the exit code
//!   and why) or `NotFound` (no such run, or it is gone without an exit record: a host
//!   crash, a deleted Job). `watch` replays the run's events from the start (skipping as
//!   many as the caller already has) and ends with `Exited` once the run is over; a
//!   stream that ends without `Exited` was cut (detached, lost): ask `status`.
//! - **Detach is not cancel.** [`Runner::detach`] ends this process's watches and leaves
//!   the run going (shutdown, a lease lost to another worker); [`Runner::cancel`] stops
//!   the run and deletes what the runner keeps of it.
//! - **Secrets travel apart.** [`LaunchSpec::secret_env`] (model key, signed URLs) never
//!   appears in a spec a cluster stores in plain text, a log line or a `Debug` output.
//! - **Runs carry labels**, and [`Runner::list`] finds them by label, so runs no task row
//!   names (orphans) are found and removed.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use secrecy::SecretString;

use crate::store::BoxError;
use crate::task::TaskId;

pub mod absent;
pub mod container;
pub mod kubernetes;
pub mod process;

pub use absent::NoRunner;
pub use container::{ContainerRunner, ContainerSettings};
pub use kubernetes::{KubeRunner, KubeSettings};
pub use process::ProcessRunner;

/// Label every run of this service carries.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "agent-rs-orchestrator";
/// Label naming the task a run works on.
pub const LABEL_TASK_ID: &str = "agent-rs/task-id";
/// Label naming the attempt a run belongs to.
pub const LABEL_ATTEMPT: &str = "agent-rs/attempt";

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot launch the agent: {0}")]
    Launch(String),
    #[error("unknown run `{0}`")]
    UnknownRun(String),
    /// The runner's backend could not be reached (an API server down, a timeout): the
    /// same call may succeed later.
    #[error("runner unavailable: cannot {doing}: {source}")]
    Unavailable {
        doing: String,
        #[source]
        source: BoxError,
    },
    #[error("runner failure: cannot {doing}: {source}")]
    Failed {
        doing: String,
        #[source]
        source: BoxError,
    },
}

impl RunnerError {
    pub fn is_transient(&self) -> bool {
        matches!(self, RunnerError::Unavailable { .. })
    }

    pub fn failed(doing: impl Into<String>, source: impl Into<BoxError>) -> Self {
        RunnerError::Failed {
            doing: doing.into(),
            source: source.into(),
        }
    }
}

impl crate::store::retry::Transient for RunnerError {
    fn is_transient(&self) -> bool {
        RunnerError::is_transient(self)
    }
}

/// A run, by its name: what the task row's `runner_ref` holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunHandle(pub String);

impl std::fmt::Display for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of `task_id`'s run under `attempt`: lower-case letters, digits and dashes,
/// at most 63 characters, so it is a valid Kubernetes Job name and a file name.
pub fn run_name(task_id: TaskId, attempt: u32) -> RunHandle {
    RunHandle(format!("agent-{task_id}-{attempt}"))
}

/// Refuses `name` unless it has the shape of a [`run_name`]. A name read back from a row
/// is data: a runner that makes a path or names a container from it checks it first, so
/// it can neither walk out of the runner's folder nor name someone else's container.
pub(crate) fn check_run_name(name: &str) -> Result<(), RunnerError> {
    let valid = name.len() <= 63
        && name.starts_with("agent-")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(RunnerError::UnknownRun(format!(
            "`{name}` is not a run name (agent-TASK_ID-ATTEMPT)"
        )))
    }
}

/// What a run may use; `None` is the runner's default. The process runner applies
/// `memory_bytes` as an address-space limit and cannot apply `cpu_millis` (it needs a
/// cgroup); container runners apply both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Thousandths of a CPU core.
    pub cpu_millis: Option<u32>,
    pub memory_bytes: Option<u64>,
}

/// What to run.
#[derive(Clone)]
pub struct LaunchSpec {
    /// Chosen by the caller and saved in the task row before launch ([`run_name`]).
    pub name: RunHandle,
    pub task_id: TaskId,
    pub attempt: u32,
    /// Attached to the run, for [`Runner::list`]: [`LABEL_MANAGED_BY`], [`LABEL_TASK_ID`]
    /// and [`LABEL_ATTEMPT`] at least.
    pub labels: BTreeMap<String, String>,
    /// `agent-rs job` settings that are not secret: task, limits, model name, endpoint.
    pub env: BTreeMap<String, String>,
    /// Values that must never be stored or shown in plain text: the model key, the
    /// signed URLs. A Kubernetes runner puts them in a Secret, not in the Job spec.
    pub secret_env: BTreeMap<String, SecretString>,
    pub resources: Resources,
    /// The environment image the agent runs in (container runners; the process runner
    /// runs on the host). `None`: the runner's configured default.
    pub image: Option<String>,
    /// How long the run may last from its start, slack included; a runner that can (a
    /// Job's `activeDeadlineSeconds`) stops it past that. The worker watching it enforces
    /// it in any case.
    pub deadline: Duration,
}

/// Names only: the secret values never, the plain ones are noise.
impl std::fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("name", &self.name)
            .field("task_id", &self.task_id)
            .field("attempt", &self.attempt)
            .field("labels", &self.labels)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("secret_env", &self.secret_env.keys().collect::<Vec<_>>())
            .field("resources", &self.resources)
            .field("image", &self.image)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// Accepted, not started yet (a pod waiting for a node, a process being spawned).
    Pending,
    Running,
    /// Over. `code` is the agent's exit code, `None` when it was killed or the runner
    /// could not tell; `reason` says how it ended, for people.
    Exited {
        code: Option<i32>,
        reason: String,
    },
    /// No such run, or it is gone without leaving an exit record.
    NotFound,
}

/// A run [`Runner::list`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub handle: RunHandle,
    pub labels: BTreeMap<String, String>,
    pub status: RunStatus,
}

impl RunInfo {
    /// The task the run's labels name, if they name a valid one.
    pub fn task_id(&self) -> Option<TaskId> {
        self.labels.get(LABEL_TASK_ID)?.parse().ok()
    }
}

/// What a watched run reports.
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerEvent {
    /// One JSON event line `agent-rs` printed.
    AgentEvent(serde_json::Value),
    /// The run is over (see [`RunStatus::Exited`]); always the last item.
    Exited { code: Option<i32>, reason: String },
}

#[async_trait]
pub trait Runner: Send + Sync + 'static {
    /// Starts the run named `spec.name`, or does nothing if a run of that name exists.
    async fn launch(&self, spec: LaunchSpec) -> Result<RunHandle, RunnerError>;

    async fn status(&self, handle: &RunHandle) -> Result<RunStatus, RunnerError>;

    /// The run's events from the start, the first `skip` left out, ending with `Exited`
    /// once it is over. Any number of watchers, from any process.
    async fn watch(
        &self,
        handle: &RunHandle,
        skip: u64,
    ) -> Result<BoxStream<'static, RunnerEvent>, RunnerError>;

    /// Ends this process's watches of the run (their streams end without `Exited`) and
    /// leaves the run going. Idempotent.
    async fn detach(&self, handle: &RunHandle) -> Result<(), RunnerError>;

    /// Stops the run if it still goes (everything it started included) and deletes what
    /// the runner keeps of it (the Job, the run folder). Idempotent.
    async fn cancel(&self, handle: &RunHandle) -> Result<(), RunnerError>;

    /// The runs whose labels include every pair of `selector`.
    async fn list(&self, selector: &BTreeMap<String, String>) -> Result<Vec<RunInfo>, RunnerError>;
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn launch_spec_debug_shows_names_not_secret_values() {
        let spec = LaunchSpec {
            name: run_name(TaskId::new(), 1),
            task_id: TaskId::new(),
            attempt: 1,
            labels: BTreeMap::new(),
            env: BTreeMap::from([("AGENT_TASK".to_string(), "fix it".to_string())]),
            secret_env: BTreeMap::from([(
                "OPENAI_API_KEY".to_string(),
                SecretString::from("sk-very-secret"),
            )]),
            resources: Resources::default(),
            image: None,
            deadline: Duration::from_secs(60),
        };
        let text = format!("{spec:?}");
        assert!(
            text.contains("OPENAI_API_KEY") && !text.contains("sk-very-secret"),
            "{text}"
        );
    }

    #[test]
    fn run_names_are_valid_job_names() {
        let name = run_name(TaskId::new(), u32::MAX).0;
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!(name.starts_with(|c: char| c.is_ascii_lowercase()));
        assert!(check_run_name(&name).is_ok(), "{name}");
    }

    #[test]
    fn only_the_shape_of_a_run_name_is_one() {
        for name in [
            "",
            "agent-A",
            "agent-../../etc",
            "agent-a_b",
            "other-1",
            "agent",
        ] {
            assert!(check_run_name(name).is_err(), "{name}");
        }
        assert!(check_run_name(&format!("agent-{}", "a".repeat(58))).is_err());
        assert!(check_run_name(&format!("agent-{}", "a".repeat(57))).is_ok());
    }
}
