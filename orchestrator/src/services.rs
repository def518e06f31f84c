//! The outside systems, behind their traits, plus the configuration: what the worker, the
//! reconciler and the API share.
//!
//! Which implementations sit behind the trait objects (embedded or cluster) is decided
//! once, where `Services` is built; nothing that receives it branches on the profile.

use std::sync::Arc;

use secrecy::SecretSlice;

use crate::blob::{BlobStore, LocalBlobConfigError, LocalBlobStore};
use crate::cache::{MemoryCacheLimits, MemoryStatusCache, StatusCache, TimeLimitedCache};
use crate::config::OrchestratorConfig;
use crate::queue::{InProcessQueue, Queue};
use crate::runner::{ProcessRunner, Runner};
use crate::store::{SqliteTaskStore, StoreError, TaskStore};

/// Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn TaskStore>,
    pub queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: Arc<dyn StatusCache>,
    pub runner: Arc<dyn Runner>,
    pub config: Arc<OrchestratorConfig>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The concrete embedded parts behind a [`Services`], for what only they can do: the API
/// serves the local blob store's signed URLs, shutdown closes the queue and the database.
#[derive(Debug, Clone)]
pub struct EmbeddedParts {
    pub store: SqliteTaskStore,
    pub queue: InProcessQueue,
    pub blobs: Arc<LocalBlobStore>,
    pub cache: MemoryStatusCache,
}

/// Why the embedded services could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blobs(#[from] LocalBlobConfigError),
}

impl Services {
    /// Everything on one machine under `config.data_dir`: the SQLite file `tasks.db`, the
    /// blob folder `blobs/` (signed URLs point at `public_base_url`, where the API serves
    /// them), an in-process queue, an in-memory cache and local agent processes.
    pub async fn embedded(
        config: OrchestratorConfig,
        public_base_url: &str,
        signing_key: SecretSlice<u8>,
    ) -> Result<(Self, EmbeddedParts), EmbeddedError> {
        let store = SqliteTaskStore::open(config.data_dir.join("tasks.db")).await?;
        let blobs = Arc::new(LocalBlobStore::new(
            config.data_dir.join("blobs"),
            public_base_url,
            signing_key,
        )?);
        let parts = EmbeddedParts {
            store,
            queue: InProcessQueue::new(),
            blobs,
            cache: memory_cache(&config),
        };
        let services = Self {
            store: Arc::new(parts.store.clone()),
            queue: Arc::new(parts.queue.clone()),
            blobs: parts.blobs.clone(),
            cache: time_limited(Arc::new(parts.cache.clone()), &config),
            runner: Arc::new(ProcessRunner::from_config(&config)),
            config: Arc::new(config),
        };
        Ok((services, parts))
    }
}

/// The in-memory cache sized by the configuration.
pub fn memory_cache(config: &OrchestratorConfig) -> MemoryStatusCache {
    MemoryStatusCache::with_limits(MemoryCacheLimits {
        max_bytes: config.cache.memory_max_bytes,
        ..MemoryCacheLimits::default()
    })
}

/// Any cache behind the configured per-call deadline: how every profile hands its cache
/// to the worker and the API.
pub fn time_limited(
    cache: Arc<dyn StatusCache>,
    config: &OrchestratorConfig,
) -> Arc<dyn StatusCache> {
    Arc::new(TimeLimitedCache::new(cache, config.cache.call_timeout()))
}
