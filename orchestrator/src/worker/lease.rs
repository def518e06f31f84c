//! A worker's hold on one task: its lease, renewed while the work goes on, and the
//! fenced writes that move the task.
//!
//! [`Held::keep`] runs a piece of work (a preparation) while checking the row every
//! `cancel_poll` and renewing the lease every third of its length, and stops the work as
//! soon as the task is no longer ours: cancelled, failed by someone else, or taken over
//! after the lease expired. A store that fails transiently is retried; if it stays down
//! past the lease's expiry, the lease counts as lost (someone else may hold it by now).

use std::future::Future;
use std::time::Duration;

use super::Stop;
use crate::services::Services;
use crate::store::retry::{RetryPolicy, retry};
use crate::store::{Lease, TransitionError};
use crate::task::{Task, TaskStatus, TaskUpdate, now_ms};
use crate::tasks::{announce, publish_result};

/// The lease on a task this worker works on.
pub(crate) struct Held {
    services: Services,
    pub lease: Lease,
    renewed_at: tokio::time::Instant,
}

impl Held {
    pub fn new(services: &Services, lease: Lease) -> Self {
        Self {
            services: services.clone(),
            lease,
            renewed_at: tokio::time::Instant::now(),
        }
    }

    fn ttl(&self) -> Duration {
        self.services.config.worker.lease_ttl()
    }

    /// The fenced move of `task` to `to` (`to == task.status` records `update` only),
    /// announced to followers. Transient store failures are retried; a retry that finds
    /// the move already made (the first answer was lost) counts as done.
    pub async fn advance(
        &mut self,
        task: &Task,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, Stop> {
        let message = update.message.clone();
        let store = &self.services.store;
        let lease = &self.lease;
        let moved = retry(RetryPolicy::default(), "a fenced task write", || {
            store.advance(lease, task.status, to, update.clone())
        })
        .await;
        let moved = match moved {
            Ok(moved) => moved,
            Err(TransitionError::Conflict { actual, .. }) if actual == to => {
                match store.get(task.id).await {
                    Ok(Some(row)) if Lease::of(&row).is_some_and(|l| same_holder(&l, lease)) => row,
                    Ok(Some(row)) if to.is_terminal() && row.status == to => row,
                    _ => {
                        return Err(Stop::from_transition(
                            task.id,
                            TransitionError::Conflict {
                                id: task.id,
                                expected: task.status,
                                actual,
                            },
                        ));
                    }
                }
            }
            Err(err) => return Err(Stop::from_transition(task.id, err)),
        };
        if to != task.status {
            announce(
                &*self.services.cache,
                moved.events_id(),
                to,
                message.as_deref(),
            )
            .await;
            publish_result(&*self.services.queue, &moved).await;
        }
        Ok(moved)
    }

    /// Checks the row (a cancel?) and renews the lease when a third of it has passed.
    pub async fn check(&mut self) -> Result<(), Stop> {
        let id = self.lease.task_id;
        if self.renewed_at.elapsed() >= self.ttl() / 3 {
            return self.renew().await;
        }
        match self.services.store.get(id).await {
            Ok(Some(row)) if Lease::of(&row).is_some_and(|l| same_holder(&l, &self.lease)) => {
                Ok(())
            }
            Ok(Some(row)) => Err(Stop::Moved {
                id,
                status: Some(row.status),
                reason: describe(&row),
            }),
            Ok(None) => Err(Stop::Moved {
                id,
                status: None,
                reason: "deleted".to_string(),
            }),
            Err(err) => {
                tracing::warn!(task_id = %id, error = %err, "cannot re-read a held task");
                self.expired_while_unreachable()
            }
        }
    }

    async fn renew(&mut self) -> Result<(), Stop> {
        let id = self.lease.task_id;
        match self.services.store.renew(&self.lease, self.ttl()).await {
            Ok(lease) => {
                self.lease = lease;
                self.renewed_at = tokio::time::Instant::now();
                Ok(())
            }
            Err(err) if err.is_transient() => {
                tracing::warn!(task_id = %id, error = %err, "cannot renew a lease; retrying");
                self.expired_while_unreachable()
            }
            Err(err) => Err(Stop::from_transition(id, err)),
        }
    }

    /// While the store cannot be reached, the lease holds until its expiry; past it,
    /// someone else may have taken the task over.
    fn expired_while_unreachable(&self) -> Result<(), Stop> {
        if now_ms() < self.lease.expires_at {
            return Ok(());
        }
        Err(Stop::Moved {
            id: self.lease.task_id,
            status: None,
            reason: "the lease expired while the store was unreachable".to_string(),
        })
    }

    /// Runs `work` while keeping the lease; stops it when the task is no longer ours.
    pub async fn keep<T>(&mut self, work: impl Future<Output = T>) -> Result<T, Stop> {
        let mut poll = tokio::time::interval(self.services.config.worker.cancel_poll());
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                _ = poll.tick() => self.check().await?,
            }
        }
    }

    /// Lets go of the task unfinished: anyone may claim or take it over at once; the
    /// reconciler looks at it again once `look_again_in` passed.
    pub async fn release_for(&mut self, look_again_in: Duration) -> Result<(), TransitionError> {
        self.services
            .store
            .release(&self.lease, look_again_in)
            .await
    }

    /// Lets go of the task unfinished (shutdown, a failing dependency), for anyone to
    /// pick up at once.
    pub async fn release(mut self) {
        let id = self.lease.task_id;
        if let Err(err) = self.release_for(Duration::ZERO).await {
            tracing::warn!(task_id = %id, error = %err, "cannot release a lease; it expires on its own");
        }
    }
}

fn same_holder(a: &Lease, b: &Lease) -> bool {
    a.holder == b.holder && a.attempt == b.attempt
}

/// What happened to a task that is no longer ours, for logs.
fn describe(row: &Task) -> String {
    match &row.lease_holder {
        _ if row.status.is_terminal() => format!("now {}", row.status),
        Some(holder) => format!("held by {holder} (attempt {})", row.attempt),
        None => format!("released ({}, attempt {})", row.status, row.attempt),
    }
}
