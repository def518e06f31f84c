//! The reconciler's steps, one per kind of repair, each on one task.
//!
//! A claimed task is repaired only under a lease the reconciler took over itself, so the
//! step's writes are fenced like a worker's, and a worker that comes back to life after
//! its lease expired finds its own writes refused.

use std::time::Duration;

use super::{Action, Observation, REPAIR_TRIES, Reconciler, Step, decide};
use crate::queue::TaskMessage;
use crate::runner::RunHandle;
use crate::store::retry::retry;
use crate::store::{Due, LEASED, TransitionError};
use crate::task::{InputSource, Task, TaskId, TaskStatus, TaskUpdate, now_ms};
use crate::tasks::relay;
use crate::worker::{Held, RunEnd, Stop, deadline_in, fail, finish_run, stop_run};

impl Reconciler {
    /// The step `due` calls for on task `id`, if it still needs one.
    pub(super) async fn repair(&self, due: Due, id: TaskId) -> Result<Option<Step>, String> {
        match due {
            Due::Outbox { .. } => self.relay(id).await,
            Due::Queued { .. } => self.requeue(id).await,
            Due::Preparing | Due::Running => self.recover(id).await,
            Due::Expired { .. } => self.purge(id).await,
            Due::PullRequests { .. } => self.open_pull_request(id).await,
        }
    }

    /// Opens a pull request nobody is opening: its opener died while `OPENING` (the
    /// claim takes over a stale one), or the worker died before it began. The outcome
    /// is stored on the record as the worker's would be.
    async fn open_pull_request(&self, id: TaskId) -> Result<Option<Step>, String> {
        let services = &self.services;
        let store = &*services.store;
        let task = retry(REPAIR_TRIES, "reading a task's pull request", || {
            store.get(id)
        })
        .await
        .map_err(|err| err.to_string())?;
        let Some(task) = task else {
            return Ok(None);
        };
        let prs = crate::pr::PullRequests::from_config(&services.config)
            .map_err(|err| format!("pull requests are not usable on this server: {err}"))?;
        Ok(crate::pr::open_for_task(services, &prs, &task)
            .await
            .map(|outcome| Step::PullRequest(outcome.state().as_str().to_string())))
    }

    /// Deletes a finished task's files; the row stays, marked purged. Each deletion is
    /// idempotent, so a purge cut short is simply done again by the next pass.
    async fn purge(&self, id: TaskId) -> Result<Option<Step>, String> {
        let services = &self.services;
        let Some(task) = services
            .store
            .get(id)
            .await
            .map_err(|err| err.to_string())?
        else {
            return Ok(None);
        };
        if !task.status.is_terminal() {
            return Ok(None);
        }
        let mut prefixes = vec![format!("tasks/{id}")];
        if let InputSource::Zip { zip_key, .. } = &task.input {
            prefixes.push(zip_key.clone());
        }
        for prefix in &prefixes {
            services.blobs.delete_prefix(prefix).await.map_err(|err| {
                crate::metrics::blob_error("purge");
                format!("deleting {prefix}: {err}")
            })?;
        }
        if let Some(name) = &task.runner_ref {
            services
                .runner
                .cancel(&RunHandle(name.clone()))
                .await
                .map_err(|err| format!("removing the run {name}: {err}"))?;
        }
        services
            .store
            .mark_purged(id)
            .await
            .map_err(|err| err.to_string())?;
        Ok(Some(Step::Purged))
    }

    async fn relay(&self, id: TaskId) -> Result<Option<Step>, String> {
        let store = &*self.services.store;
        let task = retry(REPAIR_TRIES, "reading a created task", || store.get(id)).await;
        match task.map_err(|err| err.to_string())? {
            Some(task) if task.status == TaskStatus::Queued => {
                if relay(store, &*self.services.queue, id).await {
                    Ok(Some(Step::Relayed))
                } else {
                    Err("the queue refused the task's message".to_string())
                }
            }
            // Claimed or gone already: its message went out.
            _ => retry(REPAIR_TRIES, "removing an outbox entry", || {
                store.outbox_done(id)
            })
            .await
            .map(|()| None)
            .map_err(|err| err.to_string()),
        }
    }

    async fn requeue(&self, id: TaskId) -> Result<Option<Step>, String> {
        self.send(id).await?;
        let store = &self.services.store;
        retry(REPAIR_TRIES, "recording a re-sent task", || {
            store.requeued(id)
        })
        .await
        .map_err(|err| err.to_string())?;
        Ok(Some(Step::Requeued))
    }

    async fn send(&self, id: TaskId) -> Result<(), String> {
        self.services
            .queue
            .enqueue(TaskMessage { task_id: id })
            .await
            .map_err(|err| format!("cannot send the task's message: {err}"))
    }

    /// Takes over a claimed task whose lease expired and takes its step.
    async fn recover(&self, id: TaskId) -> Result<Option<Step>, String> {
        let store = &self.services.store;
        let read = retry(REPAIR_TRIES, "reading a claimed task", || store.get(id)).await;
        let Some(task) = read.map_err(|err| err.to_string())? else {
            return Ok(None);
        };
        if !LEASED.contains(&task.status) {
            return Ok(None);
        }
        let ttl = self.services.config.worker.lease_ttl();
        let holder = self.next_holder();
        let taken = retry(REPAIR_TRIES, "taking a task over", || {
            store.take_over(id, task.status, task.attempt, &holder, ttl)
        })
        .await;
        let (task, lease) = match taken {
            Ok(taken) => taken,
            Err(TransitionError::Store(err)) => return Err(err.to_string()),
            // Someone renewed, claimed or finished it since the query: not ours to fix.
            Err(_) => return Ok(None),
        };
        let mut held = Held::new(&self.services, lease);
        let action = self.act(task, &mut held).await?;
        Ok(Some(Step::Repaired(action)))
    }

    async fn observe(&self, task: &Task) -> Observation {
        let run = match &task.runner_ref {
            None => None,
            Some(name) => Some(
                self.services
                    .runner
                    .status(&RunHandle(name.clone()))
                    .await
                    .map_err(|err| err.to_string()),
            ),
        };
        Observation { now: now_ms(), run }
    }

    /// Decides and applies the step for a task this reconciler holds.
    async fn act(&self, task: Task, held: &mut Held) -> Result<Action, String> {
        let config = &self.services.config;
        let action = decide(&task, &self.observe(&task).await, config);
        if action != Action::RecordLaunch {
            self.apply(task, held, &action).await?;
            return Ok(action);
        }
        let update = TaskUpdate {
            deadline_in: Some(deadline_in(&task, config)),
            ..TaskUpdate::default()
        };
        let running = held
            .advance(&task, TaskStatus::RunningAgent, update)
            .await
            .map_err(|stop| stop.to_string())?;
        let next = decide(&running, &self.observe(&running).await, config);
        self.apply(running, held, &next).await?;
        Ok(next)
    }

    async fn apply(&self, task: Task, held: &mut Held, action: &Action) -> Result<(), String> {
        let config = &self.services.config;
        let lease_ttl = config.worker.lease_ttl();
        let result = match action {
            Action::Retry => {
                let queued_after = Duration::from_secs(config.reconciler.queued_after_secs);
                self.hand_over(held, queued_after, task.id).await
            }
            Action::Adopt => self.hand_over(held, lease_ttl, task.id).await,
            Action::Fail(message) => fail(held, &task, message.clone(), "attempts_exhausted")
                .await
                .map(drop)
                .map_err(|stop| stop.to_string()),
            Action::Finish(end) => self.finish(held, task, end.clone()).await,
            Action::DeadlineExceeded => {
                if let Some(name) = &task.runner_ref {
                    stop_run(&self.services, &RunHandle(name.clone())).await;
                }
                self.finish(held, task, RunEnd::DeadlineExceeded).await
            }
            Action::Later(_) | Action::RecordLaunch => {
                release(held, lease_ttl).await;
                Ok(())
            }
        };
        if result.is_err() {
            release(held, lease_ttl).await;
        }
        result
    }

    async fn finish(&self, held: &mut Held, task: Task, end: RunEnd) -> Result<(), String> {
        match finish_run(&self.services, held, task, end).await {
            Ok(_) | Err(Stop::Moved { .. }) => Ok(()),
            Err(stop) => Err(stop.to_string()),
        }
    }

    /// Releases the task for a worker (which claims or re-attaches) and sends it its
    /// message; if that message is lost, the task is due again after `look_again_in`.
    async fn hand_over(
        &self,
        held: &mut Held,
        look_again_in: Duration,
        id: TaskId,
    ) -> Result<(), String> {
        held.release_for(look_again_in)
            .await
            .map_err(|err| err.to_string())?;
        self.send(id).await
    }
}

async fn release(held: &mut Held, look_again_in: Duration) {
    if let Err(err) = held.release_for(look_again_in).await {
        tracing::debug!(error = %err, "releasing a repaired task's lease failed; it expires on its own");
    }
}
