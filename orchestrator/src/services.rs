//! The outside systems, behind their traits, plus the configuration: what the worker, the
//! reconciler and the API share.
//!
//! Which implementations sit behind the trait objects (embedded or cluster) is decided
//! once, where `Services` is built; nothing that receives it branches on the profile.

use std::sync::Arc;

use secrecy::SecretSlice;

use crate::blob::s3::S3ConfigError;
use crate::blob::{BlobStore, LocalBlobConfigError, LocalBlobStore, S3BlobStore};
use crate::cache::{
    CacheError, MemoryCacheLimits, MemoryStatusCache, RedisStatusCache, StatusCache,
    TimeLimitedCache,
};
use crate::config::{
    BlobBackend, CacheBackend, OrchestratorConfig, QueueBackend, RunnerKind, StoreBackend,
};
use crate::queue::{InProcessQueue, KafkaConnectError, KafkaQueue, Queue};
use crate::runner::{ContainerRunner, KubeRunner, NoRunner, ProcessRunner, Runner, RunnerError};
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
    /// The in-process queue, when that is the queue (its depth is known here). `None`
    /// means the queue is shared between processes (Kafka).
    pub queue: Option<InProcessQueue>,
    /// The Kafka queue, when that is the queue (shutdown closes it, so the consumer
    /// leaves its group at once).
    pub kafka: Option<KafkaQueue>,
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
    #[error("the Kafka queue: {0}")]
    Queue(#[from] KafkaConnectError),
    #[error("the S3 blob store: {0}")]
    S3(#[from] S3ConfigError),
    #[error("the runner: {0}")]
    Runner(#[from] RunnerError),
}

/// Whether a process launches agents, and so needs the runner `[runner] kind` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// A worker (or a process with every role): opens the configured runner, checking that
    /// its backend answers.
    Agents,
    /// An api-only process: never opens the runner, so its start does not depend on a
    /// container engine or a cluster it never calls ([`NoRunner`] refuses any call).
    Nothing,
}

/// The runner `[runner] kind` names. A Kubernetes runner finds its cluster the way
/// `kubectl` does (in-cluster service account, else `KUBECONFIG` or `~/.kube/config`),
/// and a process that cannot reach one refuses to start rather than run agents locally;
/// a container runner whose engine does not answer refuses likewise.
async fn open_runner(config: &OrchestratorConfig) -> Result<Arc<dyn Runner>, ServicesError> {
    Ok(match config.runner.kind {
        RunnerKind::Process => Arc::new(ProcessRunner::from_config(config)),
        RunnerKind::Kubernetes => {
            Arc::new(KubeRunner::from_environment(config.runner.kubernetes.clone()).await?)
        }
        RunnerKind::Container => {
            let runner = ContainerRunner::new(
                config.runner.container.clone(),
                config.runs_dir().join("containers"),
            )?;
            runner.ping().await?;
            Arc::new(runner)
        }
    })
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
    /// (`[store]`, `[cache]`, `[queue]`, `[blob]`; the environment may override them, see
    /// [`OrchestratorConfig::apply_env`]): the one place the binary and the tests build
    /// them. With every backend at its default this is [`Services::embedded`].
    /// `public_base_url` and `signing_key` serve the local blob folder's signed URLs.
    /// The cluster backends are reached here (Kafka's topics checked, S3's buckets
    /// checked), so a wrong address or key fails the start, not the first task.
    pub async fn from_config(
        config: OrchestratorConfig,
        public_base_url: &str,
        signing_key: SecretSlice<u8>,
    ) -> Result<(Self, ProfileParts), ServicesError> {
        Self::from_config_running(config, public_base_url, signing_key, Runs::Agents).await
    }

    /// [`Services::from_config`] for a process that runs `runs`.
    pub async fn from_config_running(
        config: OrchestratorConfig,
        public_base_url: &str,
        signing_key: SecretSlice<u8>,
        runs: Runs,
    ) -> Result<(Self, ProfileParts), ServicesError> {
        let store = open_store(&config).await?;
        let cache: Arc<dyn StatusCache> = match config.cache.backend {
            CacheBackend::Memory => Arc::new(memory_cache(&config)),
            CacheBackend::Redis => Arc::new(RedisStatusCache::new(config.cache.redis.clone())?),
        };
        let (queue, parts_queue, kafka): (Arc<dyn Queue>, _, _) = match config.queue.backend {
            QueueBackend::InProcess => {
                let queue = InProcessQueue::new();
                (Arc::new(queue.clone()), Some(queue), None)
            }
            QueueBackend::Kafka => {
                let queue = KafkaQueue::connect(&config.queue.kafka).await?;
                (Arc::new(queue.clone()), None, Some(queue))
            }
        };
        let (blobs, local_blobs): (Arc<dyn BlobStore>, _) = match config.blob.backend {
            BlobBackend::Local => {
                let local = Arc::new(LocalBlobStore::new(
                    config.data_dir.join("blobs"),
                    public_base_url,
                    signing_key,
                )?);
                (local.clone(), Some(local))
            }
            BlobBackend::S3 => (Arc::new(S3BlobStore::connect(&config.blob.s3).await?), None),
        };
        let services = Self {
            store,
            queue,
            blobs,
            cache: time_limited(cache, &config),
            runner: match runs {
                Runs::Agents => open_runner(&config).await?,
                Runs::Nothing => Arc::new(NoRunner),
            },
            config: Arc::new(config),
        };
        let parts = ProfileParts {
            local_blobs,
            queue: parts_queue,
            kafka,
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
