//! The consuming side of the Kafka queue: one background task polls the group, and
//! `receive` callers take what it read.
//!
//! The task reads every message of the partitions assigned to this process into a
//! local list (a task id each), records it as unsettled ([`Offsets`]), and wakes one
//! waiting receiver. A message that cannot be parsed is published to the dead-letter
//! topic and settled once the brokers hold it. A nacked delivery waits out its delay in
//! a second list and goes back to the first. Every 200 ms, and whenever something was
//! settled, the task stores the commit points that moved; on a revoke the context
//! stores them at once, forgets the partition, and asks for a commit.
//!
//! `receive` is cancel-safe: it takes a message from the list in the same poll that
//! returns it. Deliveries of a partition revoked since they were read are skipped (the
//! next owner reads them again).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::KafkaConfig;
use super::offsets::{Offsets, Partition};
use super::publisher::Publisher;
use crate::queue::{Acker, Delivery, QueueError, TaskMessage};

/// How often moved commit points are stored (librdkafka commits stored offsets every
/// `auto.commit.interval.ms`).
const STORE_EVERY: Duration = Duration::from_millis(200);
/// Between attempts to publish a dead letter while the brokers refuse.
const DEAD_LETTER_RETRY: Duration = Duration::from_secs(1);

/// The lists are left whole before anything can panic, so a poisoned lock is usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A message read and not yet settled.
#[derive(Debug)]
struct Pending {
    partition: Partition,
    offset: i64,
    generation: u64,
    payload: Vec<u8>,
    /// Deliveries so far (by this process).
    delivered: u32,
}

/// What the background task, the receivers and the ackers share.
struct Shared {
    config: Arc<KafkaConfig>,
    offsets: Arc<Mutex<Offsets>>,
    ready: Mutex<VecDeque<(Pending, TaskMessage)>>,
    /// Nacked deliveries waiting out their delay.
    delayed: Mutex<Vec<(Instant, Pending, TaskMessage)>>,
    receivers: Notify,
    pump: Notify,
    /// Publishes dead letters.
    publisher: Publisher,
}

impl Shared {
    fn is_current(&self, pending: &Pending) -> bool {
        lock(&self.offsets).is_current(&pending.partition, pending.generation, pending.offset)
    }

    fn settle(&self, pending: &Pending) {
        lock(&self.offsets).settle(&pending.partition, pending.generation, pending.offset);
        self.pump.notify_one();
    }

    /// Brings a nacked (or dropped) delivery back after `delay`, or dead-letters it once
    /// it was delivered `max_attempts` times.
    fn redeliver(self: &Arc<Self>, pending: Pending, message: TaskMessage, delay: Duration) {
        if pending.delivered >= self.config.max_attempts.max(1) {
            let reason = format!(
                "nacked after {} deliveries (max_attempts {})",
                pending.delivered, self.config.max_attempts
            );
            self.dead_letter(pending, reason);
            return;
        }
        lock(&self.delayed).push((Instant::now() + delay, pending, message));
        self.pump.notify_one();
    }

    /// Publishes `pending` to the dead-letter topic (retrying while the brokers refuse
    /// and the partition is still ours), then settles it.
    fn dead_letter(self: &Arc<Self>, pending: Pending, reason: String) {
        tracing::error!(%reason, topic = %pending.partition.0, partition = pending.partition.1, offset = pending.offset, "queue message dead-lettered");
        let shared = Arc::clone(self);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (a drop at shutdown): left unsettled, the next owner reads it.
            return;
        };
        runtime.spawn(async move {
            let topic = shared.config.dead_letter_topic.clone();
            let source_offset = pending.offset.to_string();
            let source_partition = pending.partition.1.to_string();
            loop {
                let record = || {
                    let headers = OwnedHeaders::new()
                        .insert(Header {
                            key: "reason",
                            value: Some(reason.as_str()),
                        })
                        .insert(Header {
                            key: "source-topic",
                            value: Some(pending.partition.0.as_str()),
                        })
                        .insert(Header {
                            key: "source-partition",
                            value: Some(source_partition.as_str()),
                        })
                        .insert(Header {
                            key: "source-offset",
                            value: Some(source_offset.as_str()),
                        });
                    FutureRecord::<'_, (), [u8]>::to(&topic)
                        .payload(pending.payload.as_slice())
                        .headers(headers)
                };
                let sent = shared
                    .publisher
                    .send(record, shared.config.publish_timeout())
                    .await;
                match sent {
                    Ok(_) => {
                        shared.settle(&pending);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "publishing a dead letter failed; retrying");
                        tokio::time::sleep(DEAD_LETTER_RETRY).await;
                        if !shared.is_current(&pending) {
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Takes one message still ours off the list.
    fn take_ready(&self) -> Option<(Pending, TaskMessage)> {
        let mut ready = lock(&self.ready);
        while let Some((pending, message)) = ready.pop_front() {
            if self.is_current(&pending) {
                return Some((pending, message));
            }
        }
        None
    }

    /// Moves due nacked deliveries back to the list; returns when the next one is due.
    fn promote_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut delayed = lock(&self.delayed);
        let mut due = Vec::new();
        let mut index = 0;
        while index < delayed.len() {
            if delayed[index].0 <= now {
                let (_, pending, message) = delayed.swap_remove(index);
                due.push((pending, message));
            } else {
                index += 1;
            }
        }
        let next = delayed.iter().map(|(at, _, _)| *at).min();
        drop(delayed);
        if !due.is_empty() {
            let mut ready = lock(&self.ready);
            // They have waited longest: first in line.
            for entry in due.into_iter().rev() {
                ready.push_front(entry);
                self.receivers.notify_one();
            }
        }
        next
    }
}

/// The consumer's context: on a revoke, store the revoked partitions' commit points,
/// forget them, and commit.
struct RebalanceContext {
    offsets: Arc<Mutex<Offsets>>,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            if let Rebalance::Assign(assigned) = rebalance {
                tracing::info!(partitions = assigned.count(), "kafka partitions assigned");
            }
            return;
        };
        let mut store = TopicPartitionList::new();
        {
            let mut offsets = lock(&self.offsets);
            for element in revoked.elements() {
                let partition = (element.topic().to_string(), element.partition());
                if let Some(point) = offsets.revoke(&partition)
                    && let Err(err) =
                        store.add_partition_offset(&partition.0, partition.1, Offset::Offset(point))
                {
                    tracing::warn!(error = %err, "cannot note a commit point");
                }
            }
        }
        tracing::info!(partitions = revoked.count(), "kafka partitions revoked");
        if store.count() > 0 {
            if let Err(err) = consumer.store_offsets(&store) {
                tracing::debug!(error = %err, "storing revoked partitions' offsets failed");
            }
            if let Err(err) = consumer.commit_consumer_state(CommitMode::Async) {
                tracing::debug!(error = %err, "committing on revoke failed");
            }
        }
    }
}

type GroupConsumer = StreamConsumer<RebalanceContext>;

/// The started consumer: its background task and what receivers take from it.
pub(super) struct Consuming {
    shared: Arc<Shared>,
}

impl Consuming {
    /// Creates the consumer, subscribes, and starts the background task (which ends
    /// when `stop` fires). Joining the group happens in the background.
    pub fn start(
        config: Arc<KafkaConfig>,
        stop: CancellationToken,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let offsets = Arc::new(Mutex::new(Offsets::default()));
        let session = config.session_timeout_ms.max(1000);
        let consumer: GroupConsumer = config
            .client_config()
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 4).max(100).to_string())
            .set("enable.partition.eof", "false")
            .create_with_context(RebalanceContext {
                offsets: Arc::clone(&offsets),
            })?;
        consumer.subscribe(&[config.tasks_topic.as_str()])?;
        let publisher = Publisher::new(&config)?;
        let shared = Arc::new(Shared {
            config,
            offsets,
            ready: Mutex::new(VecDeque::new()),
            delayed: Mutex::new(Vec::new()),
            receivers: Notify::new(),
            pump: Notify::new(),
            publisher,
        });
        tokio::spawn(pump(consumer, Arc::clone(&shared), stop));
        Ok(Self { shared })
    }

    pub fn wake_receivers(&self) {
        self.shared.receivers.notify_waiters();
    }

    pub async fn receive(&self, stop: &CancellationToken) -> Result<Delivery, QueueError> {
        loop {
            let notified = self.shared.receivers.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if stop.is_cancelled() {
                return Err(QueueError::Closed);
            }
            if let Some((mut pending, message)) = self.shared.take_ready() {
                pending.delivered += 1;
                let attempt = pending.delivered;
                let acker = KafkaAcker {
                    shared: Arc::clone(&self.shared),
                    held: Some((pending, message.clone())),
                };
                return Ok(Delivery::new(message, attempt, Box::new(acker)));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = stop.cancelled() => return Err(QueueError::Closed),
            }
        }
    }
}

/// The background task: poll, sort what comes in, store commit points.
async fn pump(consumer: GroupConsumer, shared: Arc<Shared>, stop: CancellationToken) {
    let mut store_tick = tokio::time::interval(STORE_EVERY);
    store_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next_due = shared.promote_due();
        let wait_due = async {
            match next_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            received = consumer.recv() => match received {
                Ok(message) => accept(&shared, &message),
                Err(err) => {
                    tracing::warn!(error = %err, "kafka consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = wait_due => {}
            _ = shared.pump.notified() => store_moved(&consumer, &shared),
            _ = store_tick.tick() => store_moved(&consumer, &shared),
        }
    }
    store_moved(&consumer, &shared);
    // Closing commits and leaves the group, and blocks while it does.
    let closed = tokio::task::spawn_blocking(move || {
        if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %err, "final commit failed");
        }
        drop(consumer);
    })
    .await;
    if closed.is_err() {
        tracing::warn!("closing the kafka consumer failed");
    }
}

/// Records a message just read and queues it (or dead-letters it). Synchronous: the
/// borrowed message never lives across an await.
fn accept(shared: &Arc<Shared>, message: &rdkafka::message::BorrowedMessage<'_>) {
    let partition = (message.topic().to_string(), message.partition());
    let offset = message.offset();
    let generation = lock(&shared.offsets).received(&partition, offset);
    let payload = message.payload().unwrap_or_default().to_vec();
    let pending = Pending {
        partition,
        offset,
        generation,
        payload,
        delivered: 0,
    };
    match TaskMessage::from_payload(&pending.payload) {
        Ok(task) => {
            lock(&shared.ready).push_back((pending, task));
            shared.receivers.notify_one();
        }
        Err(err) => {
            let reason = format!("not a task message: {err}");
            shared.dead_letter(pending, reason);
        }
    }
}

fn store_moved(consumer: &GroupConsumer, shared: &Shared) {
    let moved = lock(&shared.offsets).advanced();
    if moved.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), point) in moved {
        if let Err(err) = list.add_partition_offset(&topic, partition, Offset::Offset(point)) {
            tracing::warn!(error = %err, "cannot note a commit point");
        }
    }
    if let Err(err) = consumer.store_offsets(&list) {
        tracing::debug!(error = %err, "storing offsets failed (partition revoked?)");
    }
}

/// Settles one delivery; dropped unsettled, it nacks without delay.
struct KafkaAcker {
    shared: Arc<Shared>,
    held: Option<(Pending, TaskMessage)>,
}

#[async_trait]
impl Acker for KafkaAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), QueueError> {
        if let Some((pending, _)) = self.held.take() {
            self.shared.settle(&pending);
        }
        Ok(())
    }

    async fn nack(mut self: Box<Self>, delay: Duration) -> Result<(), QueueError> {
        if let Some((pending, message)) = self.held.take() {
            self.shared.redeliver(pending, message, delay);
        }
        Ok(())
    }
}

impl Drop for KafkaAcker {
    fn drop(&mut self) {
        if let Some((pending, message)) = self.held.take() {
            tracing::debug!("delivery dropped unsettled; redelivering");
            self.shared.redeliver(pending, message, Duration::ZERO);
        }
    }
}
