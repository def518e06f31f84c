//! The outside systems, behind their traits, plus the configuration: what the worker, the
//! reconciler and the API share.
//!
//! Which implementations sit behind the trait objects (embedded or cluster) is decided
//! once, where `Services` is built; nothing that receives it branches on the profile.

use std::sync::Arc;

use secrecy::SecretSlice;

use crate::blob::{BlobStore, LocalBlobConfigError, LocalBlobStore};
use crate::cache::{
    CacheError, MemoryCacheLimits, MemoryStatusCache, RedisStatusCache, StatusCache,
    TimeLimitedCache,
};
use crate::config::{CacheBackend, OrchestratorConfig, StoreBackend};
use crate::queue::{InProcessQueue, Queue};
use crate::runner::{ProcessRunner, Runner};
use crate::store::{MySqlTaskStore, SqliteTaskStore, StoreError, TaskStore};

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

/// What only some profiles have, for the binary: the local blob folder whose signed URLs
/// the API serves (absent when the blob store serves its own URLs).
#[derive(Debug, Clone, Default)]
pub struct ProfileParts {
    pub local_blobs: Option<Arc<LocalBlobStore>>,
    /// The in-process queue, when that is the queue (its depth is known here).
    pub queue: Option<InProcessQueue>,
}

/// Why the configured services could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blobs(#[from] LocalBlobConfigError),
    #[error("the status cache: {0}")]
    Cache(#[from] CacheError),
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

impl Services {
    /// The services `config` chooses, each backend by its own setting
    /// (`[store] backend`, `[cache] backend`; the environment may override them, see
    /// [`OrchestratorConfig::apply_env`]): the one place the binary and the tests build
    /// them. With every backend at its default this is [`Services::embedded`].
    /// `public_base_url` and `signing_key` serve the local blob folder's signed URLs.
    pub async fn from_config(
        config: OrchestratorConfig,
        public_base_url: &str,
        signing_key: SecretSlice<u8>,
    ) -> Result<(Self, ProfileParts), ServicesError> {
        let store = open_store(&config).await?;
        let cache: Arc<dyn StatusCache> = match config.cache.backend {
            CacheBackend::Memory => Arc::new(memory_cache(&config)),
            CacheBackend::Redis => Arc::new(RedisStatusCache::new(config.cache.redis.clone())?),
        };
        let blobs = Arc::new(LocalBlobStore::new(
            config.data_dir.join("blobs"),
            public_base_url,
            signing_key,
        )?);
        let queue = InProcessQueue::new();
        let services = Self {
            store,
            queue: Arc::new(queue.clone()),
            blobs: blobs.clone(),
            cache: time_limited(cache, &config),
            runner: Arc::new(ProcessRunner::from_config(&config)),
            config: Arc::new(config),
        };
        let parts = ProfileParts {
            local_blobs: Some(blobs),
            queue: Some(queue),
        };
        Ok((services, parts))
    }
}

/// The task store `config` chooses (for commands that need only it, such as creating a
/// token).
pub async fn open_store(config: &OrchestratorConfig) -> Result<Arc<dyn TaskStore>, StoreError> {
    Ok(match config.store.backend {
        StoreBackend::Sqlite => {
            Arc::new(SqliteTaskStore::open(config.data_dir.join("tasks.db")).await?)
        }
        StoreBackend::Mysql => Arc::new(MySqlTaskStore::connect(&config.store.mysql).await?),
    })
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
