//! The orchestrator's settings: one typed struct, read from a config file or built in code.
//!
//! Every field has a default, so an empty file (or `OrchestratorConfig::default()`) is a
//! working embedded setup. Times are whole seconds or milliseconds, named with their unit,
//! so a config file needs no duration syntax. The model endpoint is passed through to the
//! agent untouched: the orchestrator never talks to the model itself.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::cache::RedisCacheConfig;

mod backends;
mod setup_secrets;

pub use setup_secrets::{InvalidSetupSecret, SetupSecretsConfig};

pub use backends::{
    BlobBackend, BlobConfig, EnvOverrideError, QueueBackend, QueueConfig, StoreBackend, StoreConfig,
};

/// Everything the worker, the reconciler and the runner need to know.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrchestratorConfig {
    /// Where the embedded parts keep their files (database, blobs, run logs, scratch).
    pub data_dir: PathBuf,
    /// The `agent-rs` binary the process runner starts as `{agent_bin} job`.
    pub agent_bin: PathBuf,
    /// Handed to the agent as `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `AGENT_MODEL`.
    pub model: ModelEndpoint,
    /// How long the agent's signed URLs stay valid. The worker never issues them for less
    /// than the task's timeout plus the deadline slack, so uploads at the end still work.
    pub signed_url_ttl_secs: u64,
    /// A task's wall-time limit when it does not set one.
    pub default_task_timeout_secs: u64,
    /// The most attempts a best-of-N task may ask for (`attempts`).
    pub max_attempts_per_task: u32,
    /// How long a task's check may run in each attempt's final workspace.
    pub check_timeout_secs: u64,
    pub worker: WorkerConfig,
    pub reconciler: ReconcilerConfig,
    pub workspace: WorkspaceConfig,
    /// What each agent run may use.
    pub resources: ResourcesConfig,
    pub cache: CacheConfig,
    /// Which runner starts agents, and its settings.
    pub runner: RunnerConfig,
    /// The embedded runner's sandbox around each agent (`[sandbox]`).
    pub sandbox: crate::runner::process::RunSandboxConfig,
    /// Where tasks live: the SQLite file under `data_dir`, or MySQL.
    pub store: StoreConfig,
    /// What carries task ids to the workers: this process's own queue, or Kafka.
    pub queue: QueueConfig,
    /// Where code and outputs live: a folder under `data_dir`, or S3 / COS.
    pub blob: BlobConfig,
    /// Opening pull requests for completed tasks (`[pull_requests]`).
    pub pull_requests: crate::pr::PullRequestConfig,
    /// Secrets given to the setup scripts of each owner's tasks (`[setup_secrets]`).
    pub setup_secrets: SetupSecretsConfig,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            agent_bin: PathBuf::from("agent-rs"),
            model: ModelEndpoint::default(),
            signed_url_ttl_secs: 3600,
            default_task_timeout_secs: 1800,
            max_attempts_per_task: 5,
            check_timeout_secs: 600,
            worker: WorkerConfig::default(),
            reconciler: ReconcilerConfig::default(),
            workspace: WorkspaceConfig::default(),
            resources: ResourcesConfig::default(),
            cache: CacheConfig::default(),
            runner: RunnerConfig::default(),
            sandbox: crate::runner::process::RunSandboxConfig::default(),
            store: StoreConfig::default(),
            queue: QueueConfig::default(),
            blob: BlobConfig::default(),
            pull_requests: crate::pr::PullRequestConfig::default(),
            setup_secrets: SetupSecretsConfig::default(),
        }
    }
}

impl OrchestratorConfig {
    pub fn signed_url_ttl(&self) -> Duration {
        Duration::from_secs(self.signed_url_ttl_secs)
    }

    pub fn check_timeout(&self) -> Duration {
        Duration::from_secs(self.check_timeout_secs)
    }

    pub fn default_task_timeout(&self) -> Duration {
        Duration::from_secs(self.default_task_timeout_secs)
    }

    /// Where the process runner keeps each run's folder and stderr log.
    pub fn runs_dir(&self) -> PathBuf {
        self.data_dir.join("runs")
    }

    /// Where the worker prepares workspaces before packing them.
    pub fn scratch_dir(&self) -> PathBuf {
        self.data_dir.join("scratch")
    }
}

/// The model endpoint the agent talks to; `None` leaves the agent's own default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelEndpoint {
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub model: Option<String>,
}

impl ModelEndpoint {
    /// Fills the fields left unset from the server's own `OPENAI_BASE_URL`,
    /// `OPENAI_API_KEY` and `AGENT_MODEL`, the names the agent itself reads.
    pub fn or_from_env(mut self) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if self.base_url.is_none() {
            self.base_url = var("OPENAI_BASE_URL");
        }
        if self.api_key.is_none() {
            self.api_key = var("OPENAI_API_KEY").map(SecretString::from);
        }
        if self.model.is_none() {
            self.model = var("AGENT_MODEL");
        }
        self
    }
}

/// The worker pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// How many tasks run at once.
    pub concurrency: usize,
    /// How often a held task's row is re-read to notice a cancel.
    pub cancel_poll_ms: u64,
    /// How long a worker's lease on a task lasts unless renewed (it is renewed every
    /// third of that). A task whose holder died is picked up this long after its last
    /// renewal.
    pub lease_secs: u64,
    /// How many times a task may be claimed to prepare and launch its run before it
    /// fails (each claim whose lease expired before the agent started counts).
    pub max_attempts: u32,
    /// On shutdown, how long running tasks may go on before this worker lets go of them:
    /// their runs go on, detached, and another worker (or this one, restarted) picks
    /// them up.
    pub shutdown_grace_secs: u64,
    /// Between SIGTERM and SIGKILL when a run is stopped.
    pub kill_grace_secs: u64,
    /// How often a worker process whose queue is its own (embedded, beside API-only
    /// processes) reads the store's outbox for new tasks.
    pub outbox_poll_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            cancel_poll_ms: 1000,
            lease_secs: 15,
            max_attempts: 3,
            shutdown_grace_secs: 30,
            kill_grace_secs: 5,
            outbox_poll_ms: 500,
        }
    }
}

impl WorkerConfig {
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(1))
    }

    pub fn cancel_poll(&self) -> Duration {
        Duration::from_millis(self.cancel_poll_ms.max(1))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn kill_grace(&self) -> Duration {
        Duration::from_secs(self.kill_grace_secs)
    }

    pub fn outbox_poll(&self) -> Duration {
        Duration::from_millis(self.outbox_poll_ms.max(1))
    }
}

/// When the reconciler steps in. A claimed task is only ever touched once its lease
/// expired; these settle the rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilerConfig {
    /// Time between passes.
    pub interval_ms: u64,
    /// An outbox entry this old: the process that created the task did not get its
    /// message onto the queue; the reconciler sends it.
    pub pending_after_secs: u64,
    /// `QUEUED` this long (and not re-sent for as long): the message may be lost; send
    /// it again (a duplicate is harmless, the claim is a compare-and-set).
    pub queued_after_secs: u64,
    /// A run the runner cannot find counts as lost only once its task has been running
    /// this long (a just-created Job may not be visible yet).
    pub lost_after_secs: u64,
    /// How long preparing the workspace (clone or unzip, pack, upload) may take; past
    /// it the task fails.
    pub prepare_timeout_secs: u64,
    /// Added to a task's timeout for its deadline, so the agent's own timeout fires first.
    pub deadline_slack_secs: u64,
    /// Most tasks looked at per kind of repair per pass.
    pub batch: u32,
    /// How long a finished task's files (workspace, outputs and run log, uploaded zip)
    /// are kept; then they are deleted and the row stays, marked purged. 0 keeps them
    /// forever.
    pub retention_secs: u64,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            interval_ms: 10_000,
            pending_after_secs: 30,
            queued_after_secs: 300,
            lost_after_secs: 30,
            prepare_timeout_secs: 900,
            deadline_slack_secs: 120,
            batch: 500,
            retention_secs: 30 * 24 * 3600,
        }
    }
}

impl ReconcilerConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.max(1))
    }

    pub fn deadline_slack(&self) -> Duration {
        Duration::from_secs(self.deadline_slack_secs)
    }

    pub fn prepare_timeout(&self) -> Duration {
        Duration::from_secs(self.prepare_timeout_secs)
    }

    /// `None` when finished tasks' files are kept forever.
    pub fn retention(&self) -> Option<Duration> {
        (self.retention_secs > 0).then(|| Duration::from_secs(self.retention_secs))
    }
}

/// What each agent run may use; unset means the runner's default. The process runner
/// applies the memory limit (as an address-space limit) and cannot apply the CPU one;
/// container runners apply both.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourcesConfig {
    /// Thousandths of a CPU core.
    pub cpu_millis: Option<u32>,
    pub memory_mib: Option<u64>,
}

/// Where agents run: local processes (the embedded default), containers on this host or
/// Kubernetes Jobs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    pub kind: RunnerKind,
    /// Used when `kind` is `kubernetes`.
    pub kubernetes: crate::runner::KubeSettings,
    /// Used when `kind` is `container`.
    pub container: crate::runner::ContainerSettings,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    /// `agent-rs job` as a supervised local process ([`crate::runner::ProcessRunner`]).
    #[default]
    Process,
    /// One Kubernetes Job per run ([`crate::runner::KubeRunner`]).
    Kubernetes,
    /// One container per run on this host's Docker or Podman
    /// ([`crate::runner::ContainerRunner`]).
    Container,
}

/// The status cache's bounds: it may be slow or down, and must never hold the worker up.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Deadline of every cache call; past it the call fails and the caller goes on
    /// without the cache (the store is the truth).
    pub call_timeout_ms: u64,
    /// Agent events buffered per run on their way to the cache; past it events are
    /// dropped (and counted) rather than slow the agent down.
    pub publish_buffer: usize,
    /// How long a finished run waits for its buffered events to reach the cache.
    pub publish_flush_ms: u64,
    /// Event history the in-memory cache keeps, in bytes, across all tasks.
    pub memory_max_bytes: usize,
    /// `memory` (this process only) or `redis` (shared by every replica).
    pub backend: CacheBackend,
    pub redis: RedisCacheConfig,
}

/// Which status cache the services use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    #[default]
    Memory,
    Redis,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            call_timeout_ms: 2_000,
            publish_buffer: 1_024,
            publish_flush_ms: 5_000,
            memory_max_bytes: 64 << 20,
            backend: CacheBackend::default(),
            redis: RedisCacheConfig::default(),
        }
    }
}

impl CacheConfig {
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms.max(1))
    }

    pub fn publish_flush(&self) -> Duration {
        Duration::from_millis(self.publish_flush_ms)
    }
}

/// Caps on preparing a task's code (a clone or an unzipped upload), and which git URLs
/// may be cloned: the API checks submissions against the same settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// Git hosts exempt from the address checks (`git.internal`, `10.0.0.5`,
    /// `git.internal:2222`): an internal forge on a private network.
    pub allow_git_hosts: Vec<String>,
    /// Accept `file://` git URLs. Tests and local development only: on a server it lets a
    /// task read any repository on the worker's disk.
    pub allow_file_git_urls: bool,
    /// Largest workspace, in bytes (checkout or unzipped upload).
    pub max_bytes: u64,
    /// Most files in a workspace.
    pub max_files: u64,
    /// A clone still running after this is cut off (keep it under the reconciler's
    /// `prepare_timeout_secs`).
    pub clone_timeout_secs: u64,
    /// A clone connection on which nothing moved for this long is cut (a stalled
    /// server).
    pub clone_idle_timeout_secs: u64,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        Self {
            allow_git_hosts: Vec::new(),
            allow_file_git_urls: false,
            max_bytes: 1 << 30,
            max_files: 100_000,
            clone_timeout_secs: 600,
            clone_idle_timeout_secs: 60,
        }
    }
}

impl WorkspaceConfig {
    /// The extraction caps these settings give, for the worker and the API's upload
    /// check alike.
    pub fn extract_options(&self) -> crate::workspace::ExtractOptions {
        crate::workspace::ExtractOptions {
            max_total_bytes: self.max_bytes,
            max_entries: usize::try_from(self.max_files).unwrap_or(usize::MAX),
            ..crate::workspace::ExtractOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn empty_config_file_gives_the_defaults() {
        let config: OrchestratorConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert_eq!(config.worker.concurrency, 2);
        assert_eq!(config.reconciler.batch, 500);
    }

    #[test]
    fn partial_sections_keep_defaults_for_the_rest() {
        let config: OrchestratorConfig = serde_json::from_value(serde_json::json!({
            "worker": {"concurrency": 8},
            "model": {"api_key": "sk-test", "model": "m"}
        }))
        .unwrap();
        assert_eq!(config.worker.concurrency, 8);
        assert_eq!(config.worker.kill_grace_secs, 5);
        assert_eq!(
            config.model.api_key.as_ref().unwrap().expose_secret(),
            "sk-test"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<OrchestratorConfig>(r#"{"wrker": {}}"#).unwrap_err();
        assert!(err.to_string().contains("wrker"), "{err}");
        assert!(serde_json::from_str::<OrchestratorConfig>(r#"{"worker": {"x": 1}}"#).is_err());
    }

    #[test]
    fn api_key_is_not_shown_by_debug() {
        let config: OrchestratorConfig =
            serde_json::from_str(r#"{"model": {"api_key": "sk-very-secret"}}"#).unwrap();
        assert!(!format!("{config:?}").contains("sk-very-secret"));
    }
}
