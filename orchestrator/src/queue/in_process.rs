//! The embedded queue: task ids handed between the API and the workers of one process.
//!
//! Messages wait in a FIFO in their wire form (JSON bytes), so a message no consumer can
//! parse takes the same path to the dead letters as on Kafka. A semaphore counts them: a
//! receiver waits on the semaphore and takes a message only once a permit is its own.
//! Waiting is cancel-safe: a receive future dropped while waiting (or after being woken
//! but before it ran) holds no message, and tokio hands a permit it was given back.
//!
//! A nacked delivery comes back after its delay at the *front* of the queue (it has
//! waited longest); a dropped one is nacked without delay. After
//! [`QueueLimits::max_attempts`] deliveries a nack dead-letters the message instead.
//! Nothing survives the process: after a restart the reconciler re-enqueues tasks the
//! store still shows as queued.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::queue::{Acker, DeadLetter, Delivery, Queue, QueueError, QueueLimits, TaskMessage};

/// A [`Queue`] inside this process. Clones share one queue.
#[derive(Debug, Clone, Default)]
pub struct InProcessQueue {
    inner: Arc<Inner>,
}

/// A message as it waits: its bytes and how often it was delivered before.
#[derive(Debug, Clone)]
struct Envelope {
    payload: Vec<u8>,
    delivered: u32,
}

#[derive(Debug)]
struct Inner {
    limits: QueueLimits,
    messages: Mutex<VecDeque<Envelope>>,
    dead: Mutex<VecDeque<DeadLetter>>,
    /// One permit per message in `messages`: added after a push, taken before a pop.
    available: Semaphore,
}

impl Default for Inner {
    fn default() -> Self {
        Self::new(QueueLimits::default())
    }
}

/// The lists are left whole before anything can panic, so a poisoned lock is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            messages: Mutex::new(VecDeque::new()),
            dead: Mutex::new(VecDeque::new()),
            available: Semaphore::new(0),
        }
    }

    fn push(&self, envelope: Envelope, front: bool) {
        let mut messages = lock(&self.messages);
        if front {
            messages.push_front(envelope);
        } else {
            messages.push_back(envelope);
        }
        drop(messages);
        self.available.add_permits(1);
    }

    fn dead_letter(&self, payload: Vec<u8>, reason: String) {
        tracing::error!(%reason, bytes = payload.len(), "queue message dead-lettered");
        let mut dead = lock(&self.dead);
        dead.push_back(DeadLetter { payload, reason });
        while dead.len() > self.limits.dead_letters_kept {
            dead.pop_front();
        }
    }

    /// Puts a nacked message back, or dead-letters it once it was delivered too often.
    fn redeliver(&self, envelope: Envelope) {
        if envelope.delivered >= self.limits.max_attempts {
            let reason = format!(
                "nacked after {} deliveries (max_attempts {})",
                envelope.delivered, self.limits.max_attempts
            );
            self.dead_letter(envelope.payload, reason);
        } else {
            self.push(envelope, true);
        }
    }
}

impl InProcessQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: QueueLimits) -> Self {
        Self {
            inner: Arc::new(Inner::new(limits)),
        }
    }

    /// Messages waiting (not counting those delivered and not yet settled, nor those
    /// waiting out a nack's delay).
    pub fn len(&self) -> usize {
        lock(&self.inner.messages).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes bytes as they are, as a producer other than this code would: what
    /// receivers cannot parse goes to the dead letters.
    pub fn enqueue_raw(&self, payload: Vec<u8>) -> Result<(), QueueError> {
        if self.inner.available.is_closed() {
            return Err(QueueError::Closed);
        }
        let envelope = Envelope {
            payload,
            delivered: 0,
        };
        self.inner.push(envelope, false);
        Ok(())
    }

    /// The messages given up on, oldest first (at most `dead_letters_kept`).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        lock(&self.inner.dead).iter().cloned().collect()
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
        self.enqueue_raw(message.to_payload())
    }

    async fn receive(&self) -> Result<Delivery, QueueError> {
        loop {
            // The only await point: everything after it runs in the same poll, so a
            // future dropped here has taken nothing (a dead letter is already recorded).
            let permit = self
                .inner
                .available
                .acquire()
                .await
                .map_err(|_| QueueError::Closed)?;
            permit.forget();
            // A permit is added only after its message is pushed, so one is there.
            let Some(mut envelope) = lock(&self.inner.messages).pop_front() else {
                continue;
            };
            let message = match TaskMessage::from_payload(&envelope.payload) {
                Ok(message) => message,
                Err(err) => {
                    let reason = format!("not a task message: {err}");
                    self.inner.dead_letter(envelope.payload, reason);
                    continue;
                }
            };
            envelope.delivered += 1;
            let attempt = envelope.delivered;
            let acker = InProcessAcker {
                envelope: Some(envelope),
                inner: Arc::clone(&self.inner),
            };
            return Ok(Delivery::new(message, attempt, Box::new(acker)));
        }
    }
}

/// Owns a delivered message until it is settled; dropping it unsettled nacks it.
struct InProcessAcker {
    /// `None` once settled.
    envelope: Option<Envelope>,
    inner: Arc<Inner>,
}

#[async_trait]
impl Acker for InProcessAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), QueueError> {
        self.envelope = None;
        Ok(())
    }

    async fn nack(mut self: Box<Self>, delay: Duration) -> Result<(), QueueError> {
        let Some(envelope) = self.envelope.take() else {
            return Ok(());
        };
        if delay.is_zero() {
            self.inner.redeliver(envelope);
        } else {
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                inner.redeliver(envelope);
            });
        }
        Ok(())
    }
}

impl Drop for InProcessAcker {
    fn drop(&mut self) {
        if let Some(envelope) = self.envelope.take() {
            tracing::debug!("delivery dropped unsettled; redelivering");
            self.inner.redeliver(envelope);
        }
    }
}
