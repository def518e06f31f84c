//! The store's outbox as the queue between processes, for queues that live inside one
//! process (the embedded in-process queue).
//!
//! When tasks are created by one process (an API-only process on the embedded SQLite
//! file) and run by another, the creating process cannot put the task's message on the
//! running process's in-process queue. It leaves the task's outbox entry in the store
//! instead (written with the row, in one transaction), and each worker process polls
//! the outbox here, oldest first and bounded, and relays every entry onto its own queue.
//! Two worker processes may relay the same entry; the claim is a compare-and-set on the
//! row, so the task still runs once. A process whose queue is shared (Kafka) needs none
//! of this: its API relays at once, and the reconciler relays what was left.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::services::Services;
use crate::store::Due;
use crate::task::TaskStatus;
use crate::tasks::relay;

/// Polls the outbox and relays its entries onto this process's queue.
#[derive(Debug)]
pub struct OutboxFeed {
    services: Services,
}

impl OutboxFeed {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    /// Polls every `worker.outbox_poll_ms` until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.services.config.worker.outbox_poll());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.poll_once().await;
        }
    }

    /// Starts [`OutboxFeed::run`] on the runtime.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    /// Relays one batch of outbox entries; returns how many went onto the queue.
    pub async fn poll_once(&self) -> usize {
        let store = &*self.services.store;
        let batch = self.services.config.reconciler.batch;
        let due = Due::Outbox {
            older_than: Duration::ZERO,
        };
        let ids = match store.due(due, batch).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(error = %err, "reading the outbox failed; polling again");
                return 0;
            }
        };
        let mut relayed = 0;
        for id in ids {
            match store.get(id).await {
                Ok(Some(task)) if task.status == TaskStatus::Queued => {
                    if relay(store, &*self.services.queue, id).await {
                        relayed += 1;
                    }
                }
                // Claimed, finished or gone: its message is not needed any more.
                Ok(_) => {
                    if let Err(err) = store.outbox_done(id).await {
                        tracing::warn!(task_id = %id, error = %err, "cannot remove a stale outbox entry");
                    }
                }
                Err(err) => {
                    tracing::warn!(task_id = %id, error = %err, "cannot read an outbox entry's task");
                }
            }
        }
        relayed
    }
}
