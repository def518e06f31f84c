//! Which implementation sits behind each trait: the embedded one by default, a cluster
//! one when the file (`[orchestrator.store]`, `.cache`, `.queue`, `.blob`) or the
//! environment names it.
//!
//! Secrets never come from the file: database and Redis URLs with passwords, and the
//! object store's keys, come from the environment (or files the settings name), so a
//! config file can be committed and shown.

use secrecy::SecretString;
use serde::Deserialize;

use super::{CacheBackend, OrchestratorConfig};
use crate::blob::s3::S3Config;
use crate::queue::KafkaConfig;
use crate::store::MySqlConfig;

/// Which task store the services use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` (the file `tasks.db` under `data_dir`) or `mysql`.
    pub backend: StoreBackend,
    pub mysql: MySqlConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    #[default]
    Sqlite,
    Mysql,
}

/// Which queue carries task ids to the workers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// `in_process` (this process's workers only; other processes on the same store
    /// read its outbox) or `kafka` (shared by every process).
    pub backend: QueueBackend,
    pub kafka: KafkaConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueBackend {
    #[default]
    InProcess,
    Kafka,
}

/// Where code and outputs are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobConfig {
    /// `local` (the folder `blobs/` under `data_dir`, its signed URLs served by the
    /// API) or `s3` (any S3-compatible store, Tencent COS included, which serves its
    /// own presigned URLs).
    pub backend: BlobBackend,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobBackend {
    #[default]
    Local,
    S3,
}

/// A backend name in the environment that is not one of the choices.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value} is not one of: {choices}")]
pub struct EnvOverrideError {
    pub name: &'static str,
    pub value: String,
    pub choices: &'static str,
}

impl OrchestratorConfig {
    /// Applies the environment's overrides on top of the file, through `var` (the
    /// binary passes `std::env::var`; tests pass a map):
    /// - `AGENT_STORE` (`sqlite`|`mysql`), `AGENT_MYSQL_URL` (a full URL, password
    ///   included: the environment may hold secrets, the file may not);
    /// - `AGENT_CACHE` (`memory`|`redis`), `AGENT_REDIS_URL`;
    /// - `AGENT_QUEUE` (`in_process`|`kafka`), `AGENT_KAFKA_BROKERS`;
    /// - `AGENT_BLOB` (`local`|`s3`), `AGENT_S3_ENDPOINT`, and the object store's keys
    ///   from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (COS's SecretId / SecretKey);
    /// - the owners' pull request tokens, from the variables `[pull_requests]
    ///   owner_token_env` names, and their setup secrets, from those `[setup_secrets]
    ///   owner_env` names.
    pub fn apply_env(
        &mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), EnvOverrideError> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        if let Some(value) = var("AGENT_STORE") {
            self.store.backend = match value.trim() {
                "sqlite" => StoreBackend::Sqlite,
                "mysql" => StoreBackend::Mysql,
                _ => return Err(bad("AGENT_STORE", value, "sqlite, mysql")),
            };
        }
        if let Some(url) = var("AGENT_MYSQL_URL") {
            self.store.mysql.resolved_url = Some(SecretString::from(url));
        }
        if let Some(value) = var("AGENT_CACHE") {
            self.cache.backend = match value.trim() {
                "memory" => CacheBackend::Memory,
                "redis" => CacheBackend::Redis,
                _ => return Err(bad("AGENT_CACHE", value, "memory, redis")),
            };
        }
        if let Some(url) = var("AGENT_REDIS_URL") {
            self.cache.redis.resolved_url = Some(SecretString::from(url));
        }
        if let Some(value) = var("AGENT_QUEUE") {
            self.queue.backend = match value.trim() {
                "in_process" => QueueBackend::InProcess,
                "kafka" => QueueBackend::Kafka,
                _ => return Err(bad("AGENT_QUEUE", value, "in_process, kafka")),
            };
        }
        if let Some(brokers) = var("AGENT_KAFKA_BROKERS") {
            self.queue.kafka.brokers = brokers.trim().to_string();
        }
        if let Some(value) = var("AGENT_BLOB") {
            self.blob.backend = match value.trim() {
                "local" => BlobBackend::Local,
                "s3" => BlobBackend::S3,
                _ => return Err(bad("AGENT_BLOB", value, "local, s3")),
            };
        }
        if let Some(endpoint) = var("AGENT_S3_ENDPOINT") {
            self.blob.s3.endpoint = Some(endpoint.trim().to_string());
        }
        let s3 = std::mem::take(&mut self.blob.s3);
        self.blob.s3 = s3.or_credentials_from(var);
        self.pull_requests.resolve_env(var);
        self.setup_secrets.resolve_env(var);
        Ok(())
    }
}

fn bad(name: &'static str, value: String, choices: &'static str) -> EnvOverrideError {
    EnvOverrideError {
        name,
        value,
        choices,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::blob::s3::Addressing;

    #[test]
    fn backends_come_from_the_file_and_the_environment_wins() {
        let mut config: OrchestratorConfig = serde_json::from_value(serde_json::json!({
            "store": {"backend": "mysql", "mysql": {"url": "mysql://a@db:3306/t"}},
            "cache": {"backend": "redis"},
        }))
        .unwrap();
        assert_eq!(config.store.backend, StoreBackend::Mysql);
        assert_eq!(config.store.mysql.url, "mysql://a@db:3306/t");
        assert_eq!(config.cache.backend, CacheBackend::Redis);
        let env = |name: &str| match name {
            "AGENT_STORE" => Some("sqlite".to_string()),
            "AGENT_REDIS_URL" => Some("redis://:pw@cache:6379".to_string()),
            _ => None,
        };
        config.apply_env(env).unwrap();
        assert_eq!(config.store.backend, StoreBackend::Sqlite);
        assert!(
            !format!("{config:?}").contains("pw@"),
            "the URL's secret stays hidden"
        );
        let err = config
            .apply_env(|name| (name == "AGENT_CACHE").then(|| "memcached".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("memory, redis"), "{err}");
    }

    #[test]
    fn queue_and_blob_sections_choose_kafka_and_cos() {
        let text = r#"
            [queue]
            backend = "kafka"
            [queue.kafka]
            brokers = "kafka-0:9092,kafka-1:9092"
            group_id = "workers"
            [blob]
            backend = "s3"
            [blob.s3]
            endpoint = "https://cos.ap-guangzhou.myqcloud.com"
            region = "ap-guangzhou"
            code_bucket = "code-1250000000"
            logs_bucket = "logs-1250000000"
        "#;
        let config: OrchestratorConfig = toml::from_str(text).unwrap();
        assert_eq!(config.queue.backend, QueueBackend::Kafka);
        assert_eq!(config.queue.kafka.brokers, "kafka-0:9092,kafka-1:9092");
        assert_eq!(config.queue.kafka.group_id, "workers");
        assert_eq!(config.queue.kafka.tasks_topic, "codex-tasks");
        assert_eq!(config.blob.backend, BlobBackend::S3);
        assert_eq!(config.blob.s3.addressing, Addressing::VirtualHosted);
        assert_eq!(config.blob.s3.code_bucket, "code-1250000000");
        assert!(config.blob.s3.credentials.is_none());
    }

    #[test]
    fn the_default_is_embedded() {
        let config = OrchestratorConfig::default();
        assert_eq!(config.queue.backend, QueueBackend::InProcess);
        assert_eq!(config.blob.backend, BlobBackend::Local);
    }

    #[test]
    fn the_environment_chooses_kafka_and_s3_and_gives_the_keys() {
        let mut config = OrchestratorConfig::default();
        let env = |name: &str| {
            Some(
                match name {
                    "AGENT_QUEUE" => "kafka",
                    "AGENT_KAFKA_BROKERS" => " 10.0.0.1:9092 ",
                    "AGENT_BLOB" => "s3",
                    "AGENT_S3_ENDPOINT" => "http://127.0.0.1:9100",
                    "AWS_ACCESS_KEY_ID" => "AKIDEXAMPLE",
                    "AWS_SECRET_ACCESS_KEY" => "very-secret-key",
                    _ => return None,
                }
                .to_string(),
            )
        };
        config.apply_env(env).unwrap();
        assert_eq!(config.queue.backend, QueueBackend::Kafka);
        assert_eq!(config.queue.kafka.brokers, "10.0.0.1:9092");
        assert_eq!(config.blob.backend, BlobBackend::S3);
        assert_eq!(
            config.blob.s3.endpoint.as_deref(),
            Some("http://127.0.0.1:9100")
        );
        let keys = config.blob.s3.credentials.as_ref().unwrap();
        assert_eq!(keys.secret_access_key.expose_secret(), "very-secret-key");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("very-secret-key") && !shown.contains("AKIDEXAMPLE"),
            "{shown}"
        );
    }

    #[test]
    fn a_wrong_backend_name_lists_the_choices() {
        let mut config = OrchestratorConfig::default();
        let err = config
            .apply_env(|name| (name == "AGENT_QUEUE").then(|| "rabbitmq".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("in_process, kafka"), "{err}");
        let err = config
            .apply_env(|name| (name == "AGENT_BLOB").then(|| "gcs".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("local, s3"), "{err}");
    }

    #[test]
    fn keys_in_the_file_are_refused() {
        let err = serde_json::from_value::<OrchestratorConfig>(serde_json::json!({
            "blob": {"s3": {"secret_access_key": "x"}},
        }));
        assert!(err.is_err());
    }
}
