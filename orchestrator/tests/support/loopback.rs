//! Where the loopback Kafka broker and S3 server of `scripts/services` listen, for the
//! Kafka queue and S3 blob store tests.
//!
//! Settings are read as [`crate::services::setting`] reads them; a service that cannot
//! be reached fails the test with what to run: it never skips.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use orchestrator::blob::s3::{Addressing, S3Config, S3Credentials};
use orchestrator::queue::KafkaConfig;
use secrecy::SecretString;

pub use crate::services::{setting, unreachable};

pub fn s3_credentials() -> S3Credentials {
    S3Credentials {
        access_key_id: SecretString::from(setting("AGENT_TEST_S3_ACCESS_KEY", "agent-dev")),
        secret_access_key: SecretString::from(setting(
            "AGENT_TEST_S3_SECRET_KEY",
            "agent-dev-secret-only",
        )),
    }
}

/// The loopback S3 server, path style, with a code and a logs bucket of the tests' own.
pub fn s3_config() -> S3Config {
    let bucket = setting("AGENT_TEST_S3_BUCKET", "codex-test");
    S3Config {
        endpoint: Some(setting("AGENT_TEST_S3_ENDPOINT", "http://127.0.0.1:9100")),
        region: "us-east-1".to_string(),
        addressing: Addressing::Path,
        logs_bucket: format!("{bucket}-logs"),
        code_bucket: bucket,
        create_buckets: true,
        part_size_mib: 5,
        connect_timeout_ms: 2_000,
        read_timeout_ms: 20_000,
        max_attempts: 2,
        credentials: Some(s3_credentials()),
    }
}

/// The loopback broker, with topics and a group no other test uses, and timings short
/// enough for tests (a group join takes about half the session timeout).
pub fn kafka_config() -> KafkaConfig {
    let run = uuid::Uuid::new_v4().simple().to_string();
    KafkaConfig {
        brokers: setting("AGENT_TEST_KAFKA_BROKERS", "127.0.0.1:9092"),
        tasks_topic: format!("t-tasks-{run}"),
        results_topic: format!("t-results-{run}"),
        dead_letter_topic: format!("t-dead-{run}"),
        group_id: format!("t-group-{run}"),
        create_topics: true,
        partitions: 2,
        replication: 1,
        session_timeout_ms: 6_000,
        publish_timeout_ms: 10_000,
        max_attempts: 3,
        ..KafkaConfig::default()
    }
}
