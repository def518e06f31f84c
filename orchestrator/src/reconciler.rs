//! The reconciler: finds tasks that fell between the cracks and drives them on.
//!
//! Level-triggered, like a Kubernetes controller: each pass reads the world (stale rows,
//! rows past their deadline, whether their runs are alive), compares it with where each
//! task should be, and takes one step per task. It keeps no memory it depends on, so a
//! worker or the whole server may die at any line and the next pass picks up from the
//! rows. The decision is a pure function, [`decide`]; [`Reconciler::pass`] applies it.
//!
//! Status moves forward only, so a task whose run was lost cannot be queued again: it
//! ends `FAILED` (or `COMPLETED`, when its `result.json` shows the agent finished before
//! the server lost track of it).

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

use crate::config::ReconcilerConfig;
use crate::queue::TaskMessage;
use crate::runner::{RunHandle, RunnerError};
use crate::services::Services;
use crate::store::StoreError;
use crate::task::{Task, TaskId, TaskStatus, TaskUpdate, now_ms};
use crate::worker::{RunEnd, Stop, advance, finish_run};

/// What a pass saw about one task besides its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Now, in ms since the epoch.
    pub now: i64,
    /// Whether the row's run handle is alive; `None` when there is no handle or the
    /// runner could not tell.
    pub alive: Option<bool>,
    /// When this reconciler last re-enqueued the task, if it did.
    pub last_requeue: Option<i64>,
}

/// The one step to take for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do (yet).
    Wait,
    /// `PENDING` too long (the API stopped before enqueueing): `QUEUED` and enqueue.
    Enqueue,
    /// `QUEUED` too long: the message may be lost; enqueue it again.
    Requeue,
    /// Preparation was abandoned: `FAILED` with this message.
    Fail(String),
    /// The run is gone: finish from its `result.json`, or `FAILED` without one.
    FinishLost,
    /// Past its deadline: `FAILED` and stop the run.
    DeadlineExceeded,
}

const PREPARE_ABANDONED: &str = "workspace preparation did not finish (server restarted?)";

/// Decides the step for `task` given what was observed. Pure.
pub fn decide(task: &Task, seen: &Observation, config: &ReconcilerConfig) -> Action {
    if task.status.is_terminal() {
        return Action::Wait;
    }
    if task.deadline_at.is_some_and(|deadline| seen.now > deadline) {
        return Action::DeadlineExceeded;
    }
    let age = seen.now.saturating_sub(task.updated_at);
    let older_than = |secs: u64| age >= secs_to_ms(secs);
    match task.status {
        TaskStatus::Pending if older_than(config.pending_after_secs) => Action::Enqueue,
        TaskStatus::Queued if older_than(config.queued_after_secs) => {
            let nudged_recently = seen.last_requeue.is_some_and(|at| {
                seen.now.saturating_sub(at) < secs_to_ms(config.queued_after_secs)
            });
            if nudged_recently {
                Action::Wait
            } else {
                Action::Requeue
            }
        }
        TaskStatus::Processing | TaskStatus::DownloadingCode
            if older_than(config.prepare_timeout_secs) =>
        {
            Action::Fail(PREPARE_ABANDONED.to_string())
        }
        TaskStatus::RunningAgent | TaskStatus::UploadingResults
            if older_than(config.lost_after_secs) =>
        {
            match (&task.runner_ref, seen.alive) {
                (None, _) | (Some(_), Some(false)) => Action::FinishLost,
                (Some(_), Some(true) | None) => Action::Wait,
            }
        }
        _ => Action::Wait,
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The statuses the reconciler looks after.
const LIVE: [TaskStatus; 6] = [
    TaskStatus::Pending,
    TaskStatus::Queued,
    TaskStatus::Processing,
    TaskStatus::DownloadingCode,
    TaskStatus::RunningAgent,
    TaskStatus::UploadingResults,
];

/// The effectful loop around [`decide`].
#[derive(Debug)]
pub struct Reconciler {
    services: Services,
    /// When each task was last re-enqueued, so a long queue is not flooded with
    /// duplicates. Losing it (a restart) costs one extra duplicate, which is harmless.
    requeued: HashMap<TaskId, i64>,
}

impl Reconciler {
    pub fn new(services: Services) -> Self {
        Self {
            services,
            requeued: HashMap::new(),
        }
    }

    /// Runs a pass every `interval` until `shutdown` fires.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.services.config.reconciler.interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(err) = self.pass().await {
                tracing::warn!(error = %err, "reconciler pass failed; retrying next interval");
            }
        }
    }

    /// Starts [`Reconciler::run`] on the runtime.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    /// One pass: every stale or overdue task gets its step. Returns what was decided for
    /// each task that needed something.
    pub async fn pass(&mut self) -> Result<Vec<(TaskId, Action)>, StoreError> {
        let config = self.services.config.reconciler.clone();
        let now = now_ms();
        let youngest_interesting = [
            config.pending_after_secs,
            config.queued_after_secs,
            config.lost_after_secs,
            config.prepare_timeout_secs,
        ]
        .into_iter()
        .min()
        .unwrap_or_default();
        let store = &self.services.store;
        let mut tasks = store
            .stale(&LIVE, now - secs_to_ms(youngest_interesting), config.batch)
            .await?;
        for overdue in store.past_deadline(now, config.batch).await? {
            if !tasks.iter().any(|task| task.id == overdue.id) {
                tasks.push(overdue);
            }
        }
        let requeue_memory = secs_to_ms(config.queued_after_secs).saturating_mul(2);
        self.requeued
            .retain(|_, at| now.saturating_sub(*at) < requeue_memory);

        let mut taken = Vec::new();
        for task in tasks {
            let seen = Observation {
                now,
                alive: self.liveness(&task).await,
                last_requeue: self.requeued.get(&task.id).copied(),
            };
            let action = decide(&task, &seen, &config);
            if action == Action::Wait {
                continue;
            }
            tracing::info!(task_id = %task.id, status = %task.status, ?action, "reconciling");
            let id = task.id;
            match self.apply(task, &action, now).await {
                Ok(()) | Err(Stop::Moved { .. }) => {}
                Err(Stop::Store(err)) => return Err(err),
            }
            taken.push((id, action));
        }
        Ok(taken)
    }

    async fn liveness(&self, task: &Task) -> Option<bool> {
        let running = matches!(
            task.status,
            TaskStatus::RunningAgent | TaskStatus::UploadingResults
        );
        let handle = RunHandle(task.runner_ref.clone().filter(|_| running)?);
        match self.services.runner.is_alive(&handle).await {
            Ok(alive) => Some(alive),
            // A handle this runner cannot even read names no run it could ever watch.
            Err(RunnerError::UnknownRun(_)) => Some(false),
            Err(err) => {
                tracing::warn!(task_id = %task.id, error = %err, "cannot tell whether a run is alive");
                None
            }
        }
    }

    async fn apply(&mut self, task: Task, action: &Action, now: i64) -> Result<(), Stop> {
        let services = &self.services;
        match action {
            Action::Wait => {}
            Action::Enqueue => {
                let queued =
                    advance(services, &task, TaskStatus::Queued, TaskUpdate::default()).await?;
                self.enqueue(queued.id, now).await;
            }
            Action::Requeue => self.enqueue(task.id, now).await,
            Action::Fail(message) => {
                let update = TaskUpdate {
                    message: Some(message.clone()),
                    ..TaskUpdate::default()
                };
                advance(services, &task, TaskStatus::Failed, update).await?;
            }
            Action::FinishLost => {
                finish_run(services, task, RunEnd::Lost).await?;
            }
            Action::DeadlineExceeded => {
                // Fail first, then stop the run: a worker watching it then sees the row
                // moved instead of racing to record a killed run.
                let update = TaskUpdate {
                    message: Some("deadline exceeded: the task ran past its time limit".into()),
                    ..TaskUpdate::default()
                };
                let failed = advance(services, &task, TaskStatus::Failed, update).await;
                if let Some(handle) = task.runner_ref.clone().map(RunHandle)
                    && let Err(err) = services.runner.cancel(&handle).await
                {
                    tracing::warn!(task_id = %task.id, error = %err, "cannot stop an overdue run");
                }
                failed?;
            }
        }
        Ok(())
    }

    async fn enqueue(&mut self, id: TaskId, now: i64) {
        match self
            .services
            .queue
            .enqueue(TaskMessage { task_id: id })
            .await
        {
            Ok(()) => {
                self.requeued.insert(id, now);
            }
            Err(err) => {
                tracing::warn!(task_id = %id, error = %err, "cannot enqueue a task; next pass retries");
            }
        }
    }
}

#[cfg(test)]
#[path = "reconciler_tests.rs"]
mod tests;
