//! One delivery, start to end: claim, prepare, launch, watch, finish.
//!
//! Every step is a compare-and-set from the status the previous step left; when one fails
//! someone else (the API cancelling, the reconciler) owns the task now, and this worker
//! stops touching it. The delivery is acked once the task no longer needs the message,
//! and left unacked only when the server is shutting down mid-run, so the reconciler
//! (not a second run) deals with it.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use super::finish::{RunEnd, finish_run};
use super::launch::{deadline_at, launch_spec};
use super::lifecycle::{Stop, advance, close_stream};
use super::prepare::prepare_workspace;
use crate::cache::EventPublisher;
use crate::queue::{Delivery, retry_delay};
use crate::runner::{RunHandle, RunnerEvent};
use crate::services::Services;
use crate::task::{Task, TaskId, TaskStatus, TaskUpdate, now_ms};

/// What to do with the delivery once the worker is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// The task no longer needs this message.
    Ack,
    /// Could not even look at the task (store down): let the message come back.
    Redeliver,
    /// Shutting down mid-run: leave the message unacked and the task to the reconciler.
    Abandon,
}

/// Why a run stopped before its end.
enum Interrupted {
    Stop(Stop),
    Shutdown,
}

impl From<Stop> for Interrupted {
    fn from(stop: Stop) -> Self {
        Self::Stop(stop)
    }
}

/// Handles one delivery and settles it.
pub(crate) async fn process(services: &Services, delivery: Delivery, abort: &CancellationToken) {
    let id = delivery.message.task_id;
    match run_task(services, id, abort).await {
        Disposition::Ack => {
            if let Err(err) = delivery.ack().await {
                tracing::warn!(task_id = %id, error = %err, "ack failed; the message may come back (harmless)");
            }
        }
        Disposition::Redeliver => {
            // Not in a hurry to see it again: the store just failed.
            let delay = retry_delay(delivery.attempt);
            if let Err(err) = delivery.nack(delay).await {
                tracing::warn!(task_id = %id, error = %err, "nack failed; the reconciler re-enqueues the task");
            }
        }
        // Dropping an unsettled delivery nacks it.
        Disposition::Abandon => drop(delivery),
    }
}

pub(crate) async fn run_task(
    services: &Services,
    id: TaskId,
    abort: &CancellationToken,
) -> Disposition {
    let task = match services.store.get(id).await {
        Ok(Some(task)) => task,
        Ok(None) => {
            tracing::warn!(task_id = %id, "queued task does not exist; message dropped");
            return Disposition::Ack;
        }
        Err(err) => {
            tracing::warn!(task_id = %id, error = %err, "cannot load a queued task");
            return Disposition::Redeliver;
        }
    };
    if task.status != TaskStatus::Queued {
        tracing::debug!(task_id = %id, status = %task.status, "duplicate delivery; skipped");
        return Disposition::Ack;
    }
    let claim = TaskUpdate {
        bump_attempt: true,
        ..TaskUpdate::default()
    };
    let task = match advance(services, &task, TaskStatus::Processing, claim).await {
        Ok(task) => task,
        Err(Stop::Moved { .. }) => return Disposition::Ack,
        Err(Stop::Store(err)) => {
            tracing::warn!(task_id = %id, error = %err, "cannot claim a task");
            return Disposition::Redeliver;
        }
    };
    tracing::info!(task_id = %id, attempt = task.attempt, "task claimed");
    match drive(services, task, abort).await {
        Ok(()) => Disposition::Ack,
        Err(Interrupted::Shutdown) => Disposition::Abandon,
        Err(Interrupted::Stop(Stop::Moved { reason, .. })) => {
            tracing::info!(task_id = %id, %reason, "task moved elsewhere; this worker let go");
            Disposition::Ack
        }
        Err(Interrupted::Stop(Stop::Store(err))) => {
            // Past the claim a redelivery would only be skipped; the reconciler finishes it.
            tracing::error!(task_id = %id, error = %err, "task store failed mid-task; left for the reconciler");
            Disposition::Ack
        }
    }
}

/// From a claimed task to its terminal status.
async fn drive(
    services: &Services,
    task: Task,
    abort: &CancellationToken,
) -> Result<(), Interrupted> {
    let task = advance(
        services,
        &task,
        TaskStatus::DownloadingCode,
        TaskUpdate::default(),
    )
    .await?;
    let prepared = tokio::select! {
        prepared = prepare_workspace(services, &task) => prepared,
        _ = abort.cancelled() => return Err(Interrupted::Shutdown),
    };
    if let Err(err) = prepared {
        fail(
            services,
            &task,
            format!("cannot prepare the workspace: {err}"),
        )
        .await?;
        return Ok(());
    }
    let spec = match launch_spec(services, &task).await {
        Ok(spec) => spec,
        Err(err) => {
            fail(
                services,
                &task,
                format!("cannot sign the agent's URLs: {err}"),
            )
            .await?;
            return Ok(());
        }
    };
    let handle = match services.runner.launch(spec).await {
        Ok(handle) => handle,
        Err(err) => {
            fail(services, &task, err.to_string()).await?;
            return Ok(());
        }
    };
    let events = match services.runner.watch(&handle).await {
        Ok(events) => events,
        Err(err) => {
            stop_run(services, task.id, &handle).await;
            fail(services, &task, format!("cannot watch the agent: {err}")).await?;
            return Ok(());
        }
    };
    let running = TaskUpdate {
        runner_ref: Some(handle.0.clone()),
        deadline_at: Some(deadline_at(now_ms(), &task, &services.config)),
        ..TaskUpdate::default()
    };
    let task = match advance(services, &task, TaskStatus::RunningAgent, running).await {
        Ok(task) => task,
        Err(stop) => {
            stop_run(services, task.id, &handle).await;
            return Err(stop.into());
        }
    };
    let publisher = EventPublisher::start(
        services.cache.clone(),
        task.id,
        services.config.cache.publish_buffer,
    );
    let end = watch_run(services, &task, &handle, events, &publisher, abort).await;
    // Every agent event goes out before the status that ends the run.
    publisher
        .finish(services.config.cache.publish_flush())
        .await;
    if let Err(Interrupted::Stop(Stop::Moved { .. })) = &end {
        close_stream(services, task.id).await;
    }
    finish_run(services, task, end?).await?;
    Ok(())
}

async fn fail(services: &Services, task: &Task, message: String) -> Result<Task, Stop> {
    tracing::warn!(task_id = %task.id, %message, "task failed");
    let update = TaskUpdate {
        message: Some(message),
        ..TaskUpdate::default()
    };
    advance(services, task, TaskStatus::Failed, update).await
}

/// Streams the run's events to the cache (through `publisher`, never waiting on it) until
/// it exits, the row moves elsewhere (a cancel, the reconciler), or the server gives up
/// waiting on shutdown.
async fn watch_run(
    services: &Services,
    task: &Task,
    handle: &RunHandle,
    mut events: BoxStream<'static, RunnerEvent>,
    publisher: &EventPublisher,
    abort: &CancellationToken,
) -> Result<RunEnd, Interrupted> {
    let mut poll = tokio::time::interval(services.config.worker.cancel_poll());
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(RunnerEvent::AgentEvent(event)) => publisher.send(event),
                Some(RunnerEvent::Exited { code }) => return Ok(RunEnd::Exited(code)),
                None => return Ok(RunEnd::Exited(None)),
            },
            _ = poll.tick() => {
                if let Some(reason) = moved_elsewhere(services, task).await {
                    stop_run(services, task.id, handle).await;
                    // Wait for the run to be really over before letting go of the task.
                    while events.next().await.is_some() {}
                    return Err(Interrupted::Stop(Stop::Moved { id: task.id, reason }));
                }
            }
            _ = abort.cancelled() => {
                stop_run(services, task.id, handle).await;
                return Err(Interrupted::Shutdown);
            }
        }
    }
}

/// Whether the row left `RUNNING_AGENT` behind this worker's back (and how).
async fn moved_elsewhere(services: &Services, task: &Task) -> Option<String> {
    match services.store.get(task.id).await {
        Ok(Some(row)) if row.status == task.status => None,
        Ok(Some(row)) => Some(format!("now {}", row.status)),
        Ok(None) => Some("deleted".to_string()),
        Err(err) => {
            tracing::warn!(task_id = %task.id, error = %err, "cannot re-read a running task");
            None
        }
    }
}

async fn stop_run(services: &Services, id: TaskId, handle: &RunHandle) {
    if let Err(err) = services.runner.cancel(handle).await {
        tracing::warn!(task_id = %id, error = %err, "cannot stop the agent run");
    }
}
