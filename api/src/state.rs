//! What every handler shares: the orchestrator's services, the config, metrics, and the
//! shutdown signal.
//!
//! Handlers see only the orchestrator traits, so the same routes serve the embedded
//! profile (SQLite, local folder...) and the cluster one (MySQL, S3...). The one embedded
//! piece the API serves itself is the local blob store's signed URLs
//! (`local_blobs`), absent in profiles whose blob store serves its own URLs.

use std::sync::Arc;

use orchestrator::blob::LocalBlobStore;
use orchestrator::config::WorkspaceConfig;
use orchestrator::workspace::{GitUrlPolicy, InvalidGitHost};
use orchestrator::{BlobStore, Queue, Runner, Services, StatusCache, TaskOps, TaskStore};
use tokio_util::sync::CancellationToken;

use crate::auth::TokenCache;
use crate::config::ApiConfig;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::uploads::UploadSlots;
use crate::validate::DraftRules;
use crate::web::event_ticket::EventTickets;

/// The outside systems the API works through.
#[derive(Clone)]
pub struct ApiServices {
    pub store: Arc<dyn TaskStore>,
    /// Where new tasks' messages go; `None` in an API-only process whose queue would
    /// reach no worker (the embedded one): new tasks then wait in the store's outbox,
    /// which the worker processes read.
    pub queue: Option<Arc<dyn Queue>>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: Arc<dyn StatusCache>,
    /// Stops a cancelled task's run; `None` where the API cannot reach runs (the worker
    /// then notices the cancelled row itself).
    pub runner: Option<Arc<dyn Runner>>,
    /// The local blob folder, whose signed URLs `/blobs/...` serves; `None` when the
    /// blob store serves its own URLs (S3/COS).
    pub local_blobs: Option<Arc<LocalBlobStore>>,
}

impl ApiServices {
    /// The API's view of the orchestrator's services: the same parts, plus the local blob
    /// store whose URLs this server serves, if any.
    pub fn from_services(services: &Services, local_blobs: Option<Arc<LocalBlobStore>>) -> Self {
        Self {
            store: services.store.clone(),
            queue: Some(services.queue.clone()),
            blobs: services.blobs.clone(),
            cache: services.cache.clone(),
            runner: Some(services.runner.clone()),
            local_blobs,
        }
    }

    /// As an API-only process beside separate worker processes sees them. A cancel
    /// only moves the row (the worker holding the task stops its run). On a queue
    /// that lives in one process (the embedded one) new tasks are left in the store's
    /// outbox for the workers; a shared queue (`queue_is_shared`: Kafka) takes them
    /// from here at once.
    pub fn leaving_runs_to_workers(mut self, queue_is_shared: bool) -> Self {
        if !queue_is_shared {
            self.queue = None;
        }
        self.runner = None;
        self
    }

    /// The task operations (submit, cancel) over these parts.
    pub fn ops(&self) -> TaskOps {
        TaskOps {
            store: self.store.clone(),
            queue: self.queue.clone(),
            cache: self.cache.clone(),
            runner: self.runner.clone(),
        }
    }
}

pub struct AppState {
    pub services: ApiServices,
    pub config: ApiConfig,
    pub metrics: Metrics,
    pub tokens: TokenCache,
    /// The worker's own rules for git URLs and zips, checked at submission.
    pub draft_rules: DraftRules,
    /// Cancelled on shutdown: ends SSE streams so connections can drain.
    pub shutdown: CancellationToken,
    pub clock: Clock,
    /// Signs the tickets a browser's `EventSource` follows a task with; a key of this
    /// process unless the binary sets a lasting one.
    pub event_tickets: EventTickets,
    /// The cap on uploads in progress.
    pub uploads: UploadSlots,
    /// What `/readyz` checks besides the store.
    pub readiness: Readiness,
    /// Messages waiting on this process's queue, where it can tell (the embedded one).
    pub queue_depth: Option<QueueDepth>,
    /// Seals tokens sent with tasks and opens pull requests on retry; `None` when the
    /// server's pull request settings are unusable (asks are then refused with 422).
    pub pull_requests: Option<PrOpener>,
}

/// What the API opens pull requests with: the settings and sealing key, and the
/// orchestrator's services a retry opens through.
#[derive(Clone)]
pub struct PrOpener {
    pub prs: Arc<orchestrator::pr::PullRequests>,
    pub services: Services,
}

/// Reads a queue's depth for `/metrics`.
pub type QueueDepth = Arc<dyn Fn() -> usize + Send + Sync>;

pub type SharedState = Arc<AppState>;

/// The current Unix time in seconds; a parameter so tests can move the clock the blob
/// route checks expiries against.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl AppState {
    /// With the default workspace settings; see [`AppState::with_workspace`].
    pub fn new(
        services: ApiServices,
        config: ApiConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, InvalidGitHost> {
        Self::with_workspace(services, config, WorkspaceConfig::default(), shutdown)
    }

    /// `workspace` is the orchestrator's `[orchestrator.workspace]`: submissions are
    /// checked against the settings the worker clones and unzips with. Fails if an
    /// `allow_git_hosts` entry is not a host.
    pub fn with_workspace(
        services: ApiServices,
        config: ApiConfig,
        mut workspace: WorkspaceConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, InvalidGitHost> {
        config.fold_deprecated_into(&mut workspace);
        let draft_rules = DraftRules {
            git: GitUrlPolicy::from_config(&workspace)?,
            zip: workspace.extract_options(),
            max_attempts: orchestrator::OrchestratorConfig::default().max_attempts_per_task,
        };
        Ok(Self {
            services,
            tokens: config.token_cache(),
            uploads: UploadSlots::new(config.max_concurrent_uploads),
            readiness: Readiness::default(),
            queue_depth: None,
            pull_requests: None,
            config,
            metrics: Metrics::default(),
            draft_rules,
            shutdown,
            clock: Arc::new(unix_now),
            event_tickets: EventTickets::random(),
        })
    }
}
