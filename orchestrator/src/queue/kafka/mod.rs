//! The cluster profile's queue: task ids on a Kafka topic, read by the workers'
//! consumer group.
//!
//! - **Publishing** is keyed by task id, idempotent, `acks=all`: `enqueue` returns once
//!   the brokers hold the message. Publishers never join the group: an API process that
//!   only enqueues never receives, and a process starts consuming on its first
//!   [`Queue::receive`].
//! - **Consuming** runs in one background task per process ([`consume`]): it polls the
//!   group continuously (so rebalances are served while every worker is busy), reads the
//!   messages of the partitions assigned to it, dead-letters the ones that cannot be
//!   parsed, and hands the rest to `receive` callers.
//! - **Offsets** are stored only once a delivery is settled, and never past one that is
//!   not ([`offsets`]); librdkafka commits them every second and when partitions are
//!   revoked. A worker acks as soon as its claim is durable, so nothing is held for a
//!   run. A process that dies leaves its unsettled messages (and the settled ones after
//!   them) to the next owner of the partition: a duplicate is harmless, the claim is a
//!   compare-and-set.
//! - **Nacked** messages wait out their delay in this process, their offset uncommitted,
//!   and come back with the next attempt number; past `max_attempts` they go to the
//!   dead-letter topic. A rebalance that moves the partition hands them to its next
//!   owner instead (counting attempts from one again).
//! - **Results**: terminal outcomes go to the results topic for whoever subscribes
//!   ([`Queue::publish_result`]).
//! - **Outages**: a producer that librdkafka declared dead after the brokers were gone
//!   for a while is replaced ([`publisher`]).

mod config;
mod consume;
mod offsets;
mod publisher;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use publisher::Publisher;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use crate::queue::{Delivery, Queue, QueueError, TaskMessage, TaskResult};
pub use config::KafkaConfig;
use consume::Consuming;

/// Why the queue could not start.
#[derive(Debug, thiserror::Error)]
pub enum KafkaConnectError {
    #[error("cannot set up the Kafka client: {0}")]
    Client(#[source] KafkaError),
    #[error("cannot reach the Kafka brokers at {brokers}: {source}")]
    Unreachable {
        brokers: String,
        #[source]
        source: KafkaError,
    },
    #[error("cannot create the Kafka topic `{topic}`: {code}")]
    Topic {
        topic: String,
        code: RDKafkaErrorCode,
    },
}

/// A [`Queue`] on Kafka. Clones share one producer and one consumer; the consumer leaves
/// the group when the last clone is dropped (or [`KafkaQueue::close`] is called).
#[derive(Clone)]
pub struct KafkaQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaQueue")
            .field("brokers", &self.inner.config.brokers)
            .field("tasks_topic", &self.inner.config.tasks_topic)
            .field("group_id", &self.inner.config.group_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: Arc<KafkaConfig>,
    publisher: Publisher,
    /// Started by the first `receive`.
    consuming: OnceLock<Result<Arc<Consuming>, String>>,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl KafkaQueue {
    /// Connects the producer, and creates the topics (when `create_topics`) or checks
    /// that the tasks topic exists, so a wrong address shows at startup.
    pub async fn connect(config: &KafkaConfig) -> Result<Self, KafkaConnectError> {
        let publisher = Publisher::new(config).map_err(KafkaConnectError::Client)?;
        if config.create_topics {
            create_topics(config).await?;
        }
        check_topic(&publisher.producer(), config).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                config: Arc::new(config.clone()),
                publisher,
                consuming: OnceLock::new(),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// Stops consuming: waiting and later receives fail with [`QueueError::Closed`], the
    /// settled offsets are committed and the consumer leaves the group. For shutdown.
    pub fn close(&self) {
        self.inner.stop.cancel();
        if let Some(Ok(consuming)) = self.inner.consuming.get() {
            consuming.wake_receivers();
        }
    }

    /// Publishes `payload` to `topic`, keyed, and waits for the brokers to hold it.
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), QueueError> {
        let record = || FutureRecord::to(topic).key(key).payload(payload);
        let timeout = self.inner.config.publish_timeout();
        self.inner
            .publisher
            .send(record, timeout)
            .await
            .map_err(|err| publish_error(topic, err, timeout))
    }

    fn consuming(&self) -> Result<Arc<Consuming>, QueueError> {
        let started = self.inner.consuming.get_or_init(|| {
            Consuming::start(Arc::clone(&self.inner.config), self.inner.stop.clone())
                .map(Arc::new)
                .map_err(|err| err.to_string())
        });
        match started {
            Ok(consuming) => Ok(Arc::clone(consuming)),
            Err(reason) => Err(QueueError::Rejected {
                context: "start the Kafka consumer".to_string(),
                source: reason.clone().into(),
            }),
        }
    }
}

/// Sorts a failed publish: what a retry can fix, and what it cannot.
fn publish_error(topic: &str, err: KafkaError, timeout: Duration) -> QueueError {
    let context = format!("publish to `{topic}`");
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut) => QueueError::Timeout {
            context,
            after: timeout,
        },
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::InvalidTopic,
        ) => QueueError::Rejected {
            context,
            source: Box::new(err),
        },
        _ => QueueError::Unavailable {
            context,
            source: Box::new(err),
        },
    }
}

async fn create_topics(config: &KafkaConfig) -> Result<(), KafkaConnectError> {
    let admin: AdminClient<DefaultClientContext> = config
        .client_config()
        .create()
        .map_err(KafkaConnectError::Client)?;
    let names = [
        &config.tasks_topic,
        &config.results_topic,
        &config.dead_letter_topic,
    ];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                config.partitions.max(1),
                TopicReplication::Fixed(config.replication.max(1)),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(config.publish_timeout()))
        .operation_timeout(Some(config.publish_timeout()));
    let results = admin
        .create_topics(&topics, &options)
        .await
        .map_err(|source| KafkaConnectError::Unreachable {
            brokers: config.brokers.clone(),
            source,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaConnectError::Topic { topic, code }),
        }
    }
    Ok(())
}

/// Asks the brokers about the tasks topic (blocking, so on a blocking thread).
async fn check_topic(
    producer: &FutureProducer,
    config: &KafkaConfig,
) -> Result<(), KafkaConnectError> {
    check_topic_within(producer, config, config.publish_timeout()).await
}

/// [`check_topic`], waiting at most `timeout` for the brokers.
async fn check_topic_within(
    producer: &FutureProducer,
    config: &KafkaConfig,
    timeout: Duration,
) -> Result<(), KafkaConnectError> {
    let producer = producer.clone();
    let topic = config.tasks_topic.clone();
    let fetched = tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(Some(&topic), timeout)
            .map(|metadata| {
                metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .and_then(|t| t.error())
            })
    })
    .await;
    let unreachable = |source| KafkaConnectError::Unreachable {
        brokers: config.brokers.clone(),
        source,
    };
    match fetched {
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(code))) => Err(KafkaConnectError::Topic {
            topic: config.tasks_topic.clone(),
            code: code.into(),
        }),
        Ok(Err(err)) => Err(unreachable(err)),
        Err(_) => Err(unreachable(KafkaError::Canceled)),
    }
}

#[async_trait]
impl Queue for KafkaQueue {
    async fn enqueue(&self, message: TaskMessage) -> Result<(), QueueError> {
        let topic = self.inner.config.tasks_topic.clone();
        let key = message.task_id.to_string();
        self.publish(&topic, &key, &message.to_payload()).await
    }

    async fn receive(&self) -> Result<Delivery, QueueError> {
        let consuming = self.consuming()?;
        consuming.receive(&self.inner.stop).await
    }

    /// Fetches the tasks topic's metadata from the brokers.
    async fn ping(&self, within: Duration) -> Result<(), QueueError> {
        check_topic_within(&self.inner.publisher.producer(), &self.inner.config, within)
            .await
            .map_err(|err| QueueError::Unavailable {
                context: "fetch the tasks topic's metadata".to_string(),
                source: Box::new(err),
            })
    }

    /// On the results topic, keyed by task id.
    async fn publish_result(&self, result: &TaskResult) -> Result<(), QueueError> {
        let payload = serde_json::to_vec(result).map_err(|err| QueueError::Rejected {
            context: "encode a result".to_string(),
            source: Box::new(err),
        })?;
        let topic = self.inner.config.results_topic.clone();
        self.publish(&topic, &result.task_id.to_string(), &payload)
            .await
    }
}

/// What only tests and operators need: raw publishing, as another producer would.
impl KafkaQueue {
    /// Publishes bytes as they are to the tasks topic (unkeyed): what the workers cannot
    /// parse goes to the dead-letter topic.
    pub async fn enqueue_raw(&self, payload: &[u8]) -> Result<(), QueueError> {
        let topic = self.inner.config.tasks_topic.clone();
        let record = || FutureRecord::<'_, (), [u8]>::to(&topic).payload(payload);
        let timeout = self.inner.config.publish_timeout();
        self.inner
            .publisher
            .send(record, timeout)
            .await
            .map_err(|err| publish_error(&topic, err, timeout))
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }
}
