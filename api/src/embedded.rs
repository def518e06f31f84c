//! The services the configuration chooses, assembled: by default the embedded profile,
//! everything in one process on one machine.
//!
//! A SQLite file, the in-process queue, a blob folder whose signed URLs this server
//! serves, the in-memory cache and the process runner, all under the data directory;
//! each may be replaced by its cluster backend (MySQL, Redis, Kafka, S3/COS).
//! The blob signing key is generated on first start and kept in the data directory
//! (mode 0600), so signed URLs handed to running agents survive a restart.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use orchestrator::blob::signing::{MIN_SIGNING_KEY_LEN, generate_signing_key};
use orchestrator::services::Runs;
use orchestrator::store::SqliteTaskStore;
use orchestrator::{OrchestratorConfig, Services};
use secrecy::{ExposeSecret, SecretSlice};

use crate::state::ApiServices;

const SIGNING_KEY_FILE: &str = "blob-signing.key";

/// The task database in `data_dir`, created (with its migrations) if needed.
pub async fn open_store(data_dir: &Path) -> anyhow::Result<SqliteTaskStore> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let path = data_dir.join("tasks.db");
    SqliteTaskStore::open(&path)
        .await
        .with_context(|| format!("opening the task database {}", path.display()))
}

/// The blob signing key kept in `data_dir`, created on first use (owner-only access).
pub fn signing_key(data_dir: &Path) -> anyhow::Result<SecretSlice<u8>> {
    let path = data_dir.join(SIGNING_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= MIN_SIGNING_KEY_LEN => return Ok(SecretSlice::from(bytes)),
        Ok(_) => anyhow::bail!(
            "{} is shorter than {MIN_SIGNING_KEY_LEN} bytes; delete it to get a new key",
            path.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    }
    let key = generate_signing_key().context("generating the blob signing key")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(key.expose_secret())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

/// The embedded services, as the API and the worker each see them.
pub struct Embedded {
    pub api: ApiServices,
    pub orchestrator: Services,
    /// The in-process queue itself, whose depth `/metrics` reports.
    pub queue: Option<orchestrator::InProcessQueue>,
    /// The Kafka queue, closed at shutdown so its consumer leaves the group at once.
    pub kafka: Option<orchestrator::queue::KafkaQueue>,
}

impl Embedded {
    /// Whether a message enqueued here reaches other processes' workers (Kafka).
    pub fn queue_is_shared(&self) -> bool {
        self.queue.is_none()
    }
}

/// Builds the services the config chooses (embedded by default) with their files under
/// `config.data_dir`; `public_url` is where agents and clients reach this server (signed
/// blob URLs point there). The same constructor ([`Services::from_config`]) builds them
/// for the tests.
/// `runs` is [`Runs::Nothing`] for an api-only process, which then needs no runner backend.
pub async fn build(
    config: OrchestratorConfig,
    public_url: &str,
    runs: Runs,
) -> anyhow::Result<Embedded> {
    let data_dir: PathBuf = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let key = signing_key(&data_dir)?;
    let backends = format!(
        "store {:?}, cache {:?}, queue {:?}, blobs {:?}",
        config.store.backend, config.cache.backend, config.queue.backend, config.blob.backend
    );
    let (orchestrator, parts) = Services::from_config_running(config, public_url, key, runs)
        .await
        .with_context(|| {
            format!(
                "opening the services ({backends}, files in {})",
                data_dir.display()
            )
        })?;
    let api = ApiServices::from_services(&orchestrator, parts.local_blobs);
    Ok(Embedded {
        api,
        orchestrator,
        queue: parts.queue,
        kafka: parts.kafka,
    })
}
