#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Kafka queue on a real broker (tansu on loopback): the shared queue contract, and
//! what only Kafka shows: publishers never join the group, settled offsets are committed
//! (a new consumer of the group starts after them, and gets what was left unsettled),
//! results reach the results topic, a broker that is down is a clear error.

#[path = "support/loopback.rs"]
mod loopback;
mod queue_contract;
#[path = "support/services.rs"]
mod services;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use loopback::{kafka_config, unreachable};
use orchestrator::queue::{KafkaConfig, KafkaQueue};
use orchestrator::{DeadLetter, Queue, TaskId, TaskMessage};
use queue_contract::{QueueFixture, QueueProbe, queue_contract_tests};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::Mutex;

const PATIENCE: Duration = Duration::from_secs(30);

async fn connect(config: &KafkaConfig) -> KafkaQueue {
    KafkaQueue::connect(config)
        .await
        .unwrap_or_else(|err| unreachable("the Kafka broker", err))
}

/// Reads a whole topic from its start, outside any group.
struct TopicReader {
    consumer: StreamConsumer,
}

impl TopicReader {
    fn new(config: &KafkaConfig, topic: &str) -> Self {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", format!("reader-{}", TaskId::new()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        for partition in 0..config.partitions {
            partitions
                .add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&partitions).unwrap();
        drop(partitions);
        Self { consumer }
    }

    /// What arrives within `wait` of the last message: `(payload, reason header)`.
    async fn read(&self, wait: Duration) -> Vec<(Vec<u8>, String)> {
        let mut out = Vec::new();
        while let Ok(received) = tokio::time::timeout(wait, self.consumer.recv()).await {
            let message = received.unwrap();
            let reason = message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "reason"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            out.push((message.payload().unwrap_or_default().to_vec(), reason));
        }
        out
    }
}

struct KafkaProbe {
    queue: KafkaQueue,
    dead: TopicReader,
    seen: Mutex<Vec<DeadLetter>>,
}

#[async_trait]
impl QueueProbe for KafkaProbe {
    async fn inject_raw(&self, payload: Vec<u8>) {
        self.queue.enqueue_raw(&payload).await.unwrap();
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        let mut seen = self.seen.lock().await;
        for (payload, reason) in self.dead.read(Duration::from_millis(100)).await {
            seen.push(DeadLetter { payload, reason });
        }
        seen.clone()
    }
}

async fn fixture() -> QueueFixture {
    let config = kafka_config();
    let queue = connect(&config).await;
    let other = connect(&config).await;
    let probe = KafkaProbe {
        queue: queue.clone(),
        dead: TopicReader::new(&config, &config.dead_letter_topic),
        seen: Mutex::new(Vec::new()),
    };
    QueueFixture {
        queue: Arc::new(queue),
        other: Arc::new(other),
        probe: Box::new(probe),
        max_attempts: config.max_attempts,
        patience: PATIENCE,
        _keep: Box::new(()),
    }
}

mod contract {
    use super::*;
    queue_contract_tests!(fixture);
}

fn message() -> TaskMessage {
    TaskMessage {
        task_id: TaskId::new(),
    }
}

async fn receive(queue: &KafkaQueue) -> orchestrator::Delivery {
    tokio::time::timeout(PATIENCE, queue.receive())
        .await
        .expect("no delivery in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_offsets_are_committed_and_unsettled_ones_go_to_the_next_consumer() {
    let config = kafka_config();
    let queue = connect(&config).await;
    let (done, held) = (message(), message());
    // Sent one after the other, so on a shared partition `held` comes after `done`.
    queue.enqueue(done.clone()).await.unwrap();
    let first = receive(&queue).await;
    assert_eq!(first.message, done);
    first.ack().await.unwrap();
    queue.enqueue(held.clone()).await.unwrap();
    let kept = receive(&queue).await;
    assert_eq!(kept.message, held);
    // The process dies holding `held`: its settled offsets were committed, the held
    // one's was not.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    std::mem::forget(kept);
    queue.close();
    drop(queue);
    let second = connect(&config).await;
    let again = receive(&second).await;
    assert_eq!(again.message, held, "the acked message came back");
    again.ack().await.unwrap();
    if let Ok(extra) = tokio::time::timeout(Duration::from_secs(3), second.receive()).await {
        panic!("delivered again: {:?}", extra.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_published_keyed_by_task_on_the_results_topic() {
    let config = kafka_config();
    let queue = connect(&config).await;
    let id = TaskId::new();
    let result = orchestrator::TaskResult {
        task_id: id,
        status: orchestrator::TaskStatus::Completed,
        message: Some("done".to_string()),
    };
    queue.publish_result(&result).await.unwrap();
    let reader = TopicReader::new(&config, &config.results_topic);
    let read = reader.read(Duration::from_secs(5)).await;
    assert_eq!(read.len(), 1, "{read:?}");
    let back: serde_json::Value = serde_json::from_slice(&read[0].0).unwrap();
    assert_eq!(
        back,
        serde_json::json!({"task_id": id, "status": "COMPLETED", "message": "done"})
    );
}

#[tokio::test]
async fn a_broker_that_is_down_is_a_clear_error_at_connect() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = KafkaConfig {
        brokers: format!("127.0.0.1:{port}"),
        publish_timeout_ms: 2_000,
        ..kafka_config()
    };
    let err = KafkaQueue::connect(&config).await.unwrap_err();
    assert!(err.to_string().contains(&config.brokers), "{err}");
}

#[tokio::test]
async fn a_ping_fetches_the_brokers_metadata_in_bounded_time() {
    let config = kafka_config();
    let queue = connect(&config).await;
    let asked = std::time::Instant::now();
    queue.ping(Duration::from_secs(3)).await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
}
