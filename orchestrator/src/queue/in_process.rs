//! The embedded queue: task ids handed between the API and the workers of one process.
//!
//! Messages wait in a FIFO; a semaphore counts them, so a receiver waits on the semaphore
//! and takes a message only once a permit is its own. Waiting is cancel-safe: a receive
//! future dropped while waiting (or after being woken but before it ran) holds no message,
//! and tokio hands a permit it was given back to the semaphore.
//!
//! A [`Delivery`] not acked goes back to the *front* of the queue when it is dropped (the
//! worker failed or panicked before finishing), so it is the next message any receiver
//! gets: at-least-once, with the retry ahead of newer work. Nothing survives the process:
//! after a restart the reconciler re-enqueues tasks the store still shows as queued.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::queue::{Acker, Delivery, Queue, QueueError, TaskMessage};

/// A [`Queue`] inside this process. Clones share one queue.
#[derive(Debug, Clone, Default)]
pub struct InProcessQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    messages: Mutex<VecDeque<TaskMessage>>,
    /// One permit per message in `messages`: added after a push, taken before a pop.
    available: Semaphore,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            messages: Mutex::new(VecDeque::new()),
            available: Semaphore::new(0),
        }
    }
}

impl Inner {
    fn messages(&self) -> MutexGuard<'_, VecDeque<TaskMessage>> {
        // No code panics while holding the lock with the queue half-changed.
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, message: TaskMessage, front: bool) {
        let mut messages = self.messages();
        if front {
            messages.push_front(message);
        } else {
            messages.push_back(message);
        }
        drop(messages);
        self.available.add_permits(1);
    }
}

impl InProcessQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages waiting (not counting those delivered and not yet acked).
    pub fn len(&self) -> usize {
        self.inner.messages().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the queue: waiting and later receives, and later enqueues, fail with
    /// [`QueueError::Closed`]. For shutdown.
    pub fn close(&self) {
        self.inner.available.close();
    }
}

#[async_trait]
impl Queue for InProcessQueue {
    async fn enqueue(&self, message: TaskMessage) -> Result<(), QueueError> {
        if self.inner.available.is_closed() {
            return Err(QueueError::Closed);
        }
        self.inner.push(message, false);
        Ok(())
    }

    async fn receive(&self) -> Result<Delivery, QueueError> {
        // The only await point: everything after it runs in the same poll, so a future
        // dropped here has taken nothing.
        let permit = self
            .inner
            .available
            .acquire()
            .await
            .map_err(|_| QueueError::Closed)?;
        permit.forget();
        let message = self.inner.messages().pop_front().ok_or_else(|| {
            QueueError::Unavailable("in-process queue: a permit without a message".into())
        })?;
        let acker = InProcessAcker {
            message: Some(message.clone()),
            inner: Arc::clone(&self.inner),
        };
        Ok(Delivery::new(message, Box::new(acker)))
    }
}

/// Owns a delivered message until it is acked; dropping it unacked puts the message back.
struct InProcessAcker {
    /// `None` once acked.
    message: Option<TaskMessage>,
    inner: Arc<Inner>,
}

#[async_trait]
impl Acker for InProcessAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), QueueError> {
        self.message = None;
        Ok(())
    }
}

impl Drop for InProcessAcker {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            tracing::debug!(task_id = %message.task_id, "delivery dropped unacked; redelivering");
            self.inner.push(message, true);
        }
    }
}
