//! Where the Kafka queue finds its broker, topics and consumer group, and the timings
//! that decide how fast a dead worker's partitions move to another.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The Kafka queue's settings. Names default to the original design's.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    /// Where task ids go (keyed by task id).
    pub tasks_topic: String,
    /// Where terminal results go, for whoever subscribes.
    pub results_topic: String,
    /// Where messages nobody can handle go: unparseable, or nacked `max_attempts` times.
    pub dead_letter_topic: String,
    /// The workers' consumer group.
    pub group_id: String,
    /// Create missing topics at connect (with `partitions` and `replication`); off where
    /// topics are provisioned apart.
    pub create_topics: bool,
    /// Partitions of a topic created here: the most workers that share the tasks topic.
    pub partitions: i32,
    pub replication: i32,
    /// A consumer silent this long is out of the group, and its partitions move on.
    /// Joining takes about half of it.
    pub session_timeout_ms: u64,
    /// How long a publish may take (retries included) before it fails.
    pub publish_timeout_ms: u64,
    /// Deliveries of one message before a nack dead-letters it.
    pub max_attempts: u32,
    /// Further librdkafka settings (`security.protocol`, `ssl.ca.location`...), applied
    /// to every client. Not for secrets: this is the config file.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".to_string(),
            tasks_topic: "codex-tasks".to_string(),
            results_topic: "codex-results".to_string(),
            dead_letter_topic: "codex-tasks-dlq".to_string(),
            group_id: "codex-worker-group".to_string(),
            create_topics: true,
            partitions: 6,
            replication: 1,
            session_timeout_ms: 10_000,
            publish_timeout_ms: 10_000,
            max_attempts: crate::queue::QueueLimits::default().max_attempts,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms.max(1))
    }

    /// The librdkafka settings every client gets.
    pub(super) fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_designs_names() {
        let config: KafkaConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.tasks_topic, "codex-tasks");
        assert_eq!(config.results_topic, "codex-results");
        assert_eq!(config.group_id, "codex-worker-group");
        assert_eq!(config.max_attempts, 20);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<KafkaConfig>(r#"{"topic": "x"}"#).is_err());
    }
}
