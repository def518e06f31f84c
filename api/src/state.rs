//! What every handler shares: the orchestrator's services, the config, metrics, and the
//! shutdown signal.
//!
//! Handlers see only the orchestrator traits, so the same routes serve the embedded
//! profile (SQLite, local folder...) and the cluster one (MySQL, S3...). The one embedded
//! piece the API serves itself is the local blob store's signed URLs; it reaches them
//! through [`BlobUrlVerifier`], absent in profiles whose blob store serves its own URLs.

use std::sync::Arc;

use orchestrator::{BlobStore, Queue, Runner, StatusCache, TaskStore};
use tokio_util::sync::CancellationToken;
use tools::net_guard::{AllowList, InvalidAllowEntry};

use crate::auth::TokenCache;
use crate::config::ApiConfig;
use crate::metrics::Metrics;
use crate::validate::GitUrlPolicy;

/// Whether a signed `/blobs/...` URL is genuine.
pub trait BlobUrlVerifier: Send + Sync + 'static {
    /// Checks the signature and expiry carried in `query` (the raw query string) for
    /// `method` (`GET`/`PUT`) on `key`. The error says why, for the 403 body; it must not
    /// echo the signature.
    fn verify(&self, method: &str, key: &str, query: &str) -> Result<(), String>;
}

/// The outside systems the API works through.
#[derive(Clone)]
pub struct ApiServices {
    pub store: Arc<dyn TaskStore>,
    pub queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: Arc<dyn StatusCache>,
    /// Stops a cancelled task's run; `None` where the API cannot reach runs (the worker
    /// then notices the cancelled row itself).
    pub runner: Option<Arc<dyn Runner>>,
    /// Serves `/blobs/...` when the blob store is the local folder.
    pub blob_urls: Option<Arc<dyn BlobUrlVerifier>>,
}

pub struct AppState {
    pub services: ApiServices,
    pub config: ApiConfig,
    pub metrics: Metrics,
    pub tokens: TokenCache,
    pub git_policy: GitUrlPolicy,
    /// Cancelled on shutdown: ends SSE streams so connections can drain.
    pub shutdown: CancellationToken,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// Fails if an `allow_git_hosts` entry is not a host.
    pub fn new(
        services: ApiServices,
        config: ApiConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, InvalidAllowEntry> {
        let git_policy = GitUrlPolicy {
            allow: AllowList::parse(&config.allow_git_hosts)?,
            allow_file: config.allow_file_git_urls,
        };
        Ok(Self {
            services,
            config,
            metrics: Metrics::default(),
            tokens: TokenCache::default(),
            git_policy,
            shutdown,
        })
    }
}
