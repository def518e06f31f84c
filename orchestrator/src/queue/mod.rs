//! The work queue: task ids on their way to a worker.
//!
//! The queue carries ids, not state; the store decides whether a task still needs
//! running, and claiming is a compare-and-set, so a duplicate delivery is harmless.
//!
//! The contract is the one a Kafka consumer group can keep (offsets are committed in
//! order per partition, so "an unacked delivery comes back whenever it is dropped"
//! cannot be promised once later messages were acked):
//! - **Settle promptly.** A delivery is settled exactly once: [`Delivery::ack`] once the
//!   claim is durable (or the task is found not to need the message), or
//!   [`Delivery::nack`] to have it redelivered after a delay. Nobody holds a delivery for
//!   a whole run; recovering claimed work belongs to leases and the reconciler, not to
//!   redelivery.
//! - **Holding one does not block the rest.** While a delivery is unsettled, later
//!   messages are still delivered (to this consumer or another).
//! - **Dropped means nacked.** A delivery dropped unsettled (a panic, a cancelled
//!   future) is nacked without delay, without blocking the dropping thread. A process
//!   that dies with unsettled deliveries may lose them; the reconciler re-enqueues
//!   tasks left `QUEUED`.
//! - **Poison never blocks.** A message that cannot be parsed, or was nacked
//!   [`QueueLimits::max_attempts`] times, goes to a dead-letter place (a list in memory,
//!   a topic in Kafka) and the queue moves on.
//! - **Cancel-safe receive.** Dropping a `receive` future loses nothing.
//!
//! On the wire a message is JSON (`{"task_id": "..."}`, unknown fields ignored), so other
//! producers can publish and older consumers read newer messages. Implementations:
//! `InProcessQueue` (embedded), Kafka (cluster); both pass the queue contract suite.

mod in_process;
pub mod kafka;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::task::{TaskId, TaskStatus};

pub use in_process::InProcessQueue;
pub use kafka::{KafkaConfig, KafkaConnectError, KafkaQueue};

/// A boxed error from a backend client, kept as the source of a [`QueueError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What travels on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMessage {
    pub task_id: TaskId,
}

impl TaskMessage {
    /// The wire form: one JSON object.
    pub fn to_payload(&self) -> Vec<u8> {
        // A struct of one UUID always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads the wire form; anything else is a dead letter, with this error as its reason.
    pub fn from_payload(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

/// A task's terminal outcome, told to whoever subscribes (on Kafka, the results topic,
/// keyed by task id). JSON on the wire; the store stays the truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: TaskId,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A message the queue gave up on, kept for an operator to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The bytes as they were on the queue.
    pub payload: Vec<u8>,
    /// Why: the parse error, or how many times it was nacked.
    pub reason: String,
}

/// When a queue gives up on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Deliveries of one message before a further `nack` dead-letters it instead.
    pub max_attempts: u32,
    /// Dead letters kept in memory by queues that keep them there (the newest win).
    pub dead_letters_kept: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_attempts: 20,
            dead_letters_kept: 1_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backend could not be reached or failed; worth retrying with backoff.
    #[error("queue unavailable ({context}): {source}")]
    Unavailable {
        context: String,
        #[source]
        source: BoxError,
    },
    /// The backend did not answer in time; worth retrying with backoff.
    #[error("queue did not answer within {after:?} ({context})")]
    Timeout { context: String, after: Duration },
    /// Shut down: no more messages in or out.
    #[error("queue is closed")]
    Closed,
    /// The backend refused this message for good (too large, not authorized...).
    #[error("queue refused the message ({context}): {source}")]
    Rejected {
        context: String,
        #[source]
        source: BoxError,
    },
}

impl QueueError {
    /// Whether trying again later may succeed (the caller retries with backoff).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }
}

/// A received message, to be settled with [`ack`](Self::ack) or [`nack`](Self::nack).
/// Dropping it unsettled nacks it without delay.
pub struct Delivery {
    pub message: TaskMessage,
    /// 1 on the first delivery, one more after each nack.
    pub attempt: u32,
    acker: Box<dyn Acker>,
}

impl Delivery {
    pub fn new(message: TaskMessage, attempt: u32, acker: Box<dyn Acker>) -> Self {
        Self {
            message,
            attempt,
            acker,
        }
    }

    /// The message is done with: it is not delivered again.
    pub async fn ack(self) -> Result<(), QueueError> {
        self.acker.ack().await
    }

    /// Have the message delivered again (to any consumer) once `delay` has passed; past
    /// the queue's `max_attempts` it goes to the dead letters instead.
    pub async fn nack(self, delay: Duration) -> Result<(), QueueError> {
        self.acker.nack(delay).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// How an implementation settles one delivery (store an offset, re-publish, drop an
/// in-flight entry...). Its `Drop`, when neither method ran, nacks without delay and
/// without blocking (for example by a message to the implementation's own task).
#[async_trait]
pub trait Acker: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;

    async fn nack(self: Box<Self>, delay: Duration) -> Result<(), QueueError>;
}

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Publishes a message (durably, where the implementation can).
    async fn enqueue(&self, message: TaskMessage) -> Result<(), QueueError>;

    /// Waits for the next message. Cancel-safe: dropping the future loses nothing.
    /// Messages that cannot be parsed never come out of here: they are dead-lettered.
    async fn receive(&self) -> Result<Delivery, QueueError>;

    /// Checks that the queue's backend answers, waiting at most `within` (for readiness
    /// probes). A queue in this process is always there.
    async fn ping(&self, within: Duration) -> Result<(), QueueError> {
        let _ = within;
        Ok(())
    }

    /// Publishes a task's terminal outcome for whoever subscribes. Queues with no
    /// subscribers (the in-process one) drop it.
    async fn publish_result(&self, result: &TaskResult) -> Result<(), QueueError> {
        let _ = result;
        Ok(())
    }
}

/// The delay before redelivering a message nacked at `attempt` because the store was
/// unreachable: doubling from one second, at most a minute.
pub fn retry_delay(attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(6);
    Duration::from_secs(1u64 << exponent).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let secs: Vec<u64> = (1..=9).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn payload_round_trips_and_ignores_unknown_fields() {
        let message = TaskMessage {
            task_id: TaskId::new(),
        };
        assert_eq!(
            TaskMessage::from_payload(&message.to_payload()).ok(),
            Some(message.clone())
        );
        let newer = format!(r#"{{"task_id":"{}","priority":3}}"#, message.task_id);
        assert_eq!(
            TaskMessage::from_payload(newer.as_bytes()).ok(),
            Some(message)
        );
        assert!(TaskMessage::from_payload(b"not json").is_err());
    }

    #[test]
    fn only_unavailable_and_timeout_are_transient() {
        let io = || -> BoxError { Box::new(std::io::Error::other("x")) };
        let unavailable = QueueError::Unavailable {
            context: "poll".into(),
            source: io(),
        };
        let timeout = QueueError::Timeout {
            context: "poll".into(),
            after: Duration::from_secs(1),
        };
        let rejected = QueueError::Rejected {
            context: "produce".into(),
            source: io(),
        };
        assert!(unavailable.is_transient() && timeout.is_transient());
        assert!(!rejected.is_transient() && !QueueError::Closed.is_transient());
        assert!(std::error::Error::source(&unavailable).is_some());
    }
}
