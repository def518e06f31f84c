//! The work queue: task ids on their way to a worker.
//!
//! The queue carries ids, not state; the store decides whether a task still needs
//! running. Delivery is at-least-once: a message is redelivered until it is acked, so a
//! worker that dies mid-task loses nothing, and a duplicate is harmless because claiming
//! is a compare-and-set. Implementations: `InProcessQueue` (embedded), Kafka (cluster).

mod in_process;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::task::TaskId;

pub use in_process::InProcessQueue;

/// What travels on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMessage {
    pub task_id: TaskId,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue is closed")]
    Closed,
    #[error("bad message on the queue: {0}")]
    BadMessage(String),
}

/// A received message; ack it once the task no longer needs this message (claimed and
/// finished, or found already done). Dropping it unacked means redelivery.
pub struct Delivery {
    pub message: TaskMessage,
    acker: Box<dyn Acker>,
}

impl Delivery {
    pub fn new(message: TaskMessage, acker: Box<dyn Acker>) -> Self {
        Self { message, acker }
    }

    pub async fn ack(self) -> Result<(), QueueError> {
        self.acker.ack().await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// How an implementation acknowledges one delivery (commit an offset, drop an in-flight
/// entry...).
#[async_trait]
pub trait Acker: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;
}

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Publishes a message (durably, where the implementation can).
    async fn enqueue(&self, message: TaskMessage) -> Result<(), QueueError>;

    /// Waits for the next message. Cancel-safe: dropping the future loses nothing.
    async fn receive(&self) -> Result<Delivery, QueueError>;
}
