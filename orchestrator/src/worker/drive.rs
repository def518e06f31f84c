//! One held task, from where its row is to a terminal status: prepare, launch, watch,
//! finish.
//!
//! Every write is fenced on the lease ([`Held::advance`]); when one fails, the task is no
//! longer ours (cancelled, or taken over after our lease expired) and this worker stops
//! touching it. The run's name is saved in the row before the run is launched: a cancel
//! during preparation makes that write fail, so the agent is never started, and a crash
//! right after the launch leaves a row that names the run (whoever gets the task next
//! finds the run and records its launch instead of starting another).
//!
//! A blob store that cannot be reached while the workspace is prepared delays the task:
//! the preparation is tried again after a growing pause, under the lease, until it works
//! or the preparation's time is up. An outage that ends costs no attempt.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::finish::finish_run;
use super::launch::{deadline_in, launch_spec};
use super::lease::Held;
use super::prepare::{PrepareError, prepare_workspace};
use super::watch::watch_run;
use super::{Interrupted, Stop};
use crate::cache::EventPublisher;
use crate::metrics;
use crate::runner::{RunHandle, run_name};
use crate::services::Services;
use crate::store::retry::{RetryPolicy, retry};
use crate::task::{InputSource, Task, TaskStatus, TaskUpdate};
use crate::workspace::PackStats;

/// The longest pause between two tries of a preparation the blob store refused for now.
const PREPARE_PAUSE_MAX: Duration = Duration::from_secs(10);

/// Tries for a launch that failed for a passing reason (the runner's backend down).
const LAUNCH_TRIES: RetryPolicy = RetryPolicy {
    attempts: 4,
    first_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(4),
};

/// From a held task to its terminal status.
pub(crate) async fn drive(
    services: &Services,
    task: Task,
    held: &mut Held,
    abort: &CancellationToken,
) -> Result<(), Interrupted> {
    let task = match task.status {
        // Launched by a worker that died (or lost its lease) before recording it.
        TaskStatus::DownloadingCode if task.runner_ref.is_some() => {
            let running = TaskUpdate {
                deadline_in: Some(deadline_in(&task, &services.config)),
                ..TaskUpdate::default()
            };
            tracing::info!(task_id = %task.id, "its run was launched before; re-attaching");
            held.advance(&task, TaskStatus::RunningAgent, running)
                .await?
        }
        TaskStatus::Processing | TaskStatus::DownloadingCode => {
            match prepare_and_launch(services, task, held, abort).await? {
                Some(task) => task,
                None => return Ok(()),
            }
        }
        _ => task,
    };
    // Keyed by the run's name, so a replay of the run (this worker re-attached after a
    // restart) adds only the events the stream does not hold yet.
    let publisher = EventPublisher::start(
        services.cache.clone(),
        task.events_id(),
        task.runner_ref.clone().unwrap_or_default(),
        services.config.cache.publish_buffer,
    );
    let watched = Instant::now();
    let end = watch_run(services, &task, held, &publisher, abort).await;
    metrics::phase("run", watched.elapsed());
    // Every agent event goes out before the status that ends the run.
    publisher
        .finish(services.config.cache.publish_flush())
        .await;
    let finishing = Instant::now();
    finish_run(services, held, task, end?).await?;
    metrics::phase("finish", finishing.elapsed());
    Ok(())
}

/// Prepares the workspace and launches the run; `None` when the task failed on the way
/// (its row says why).
async fn prepare_and_launch(
    services: &Services,
    task: Task,
    held: &mut Held,
    abort: &CancellationToken,
) -> Result<Option<Task>, Interrupted> {
    let task = if task.status == TaskStatus::Processing {
        held.advance(&task, TaskStatus::DownloadingCode, TaskUpdate::default())
            .await?
    } else {
        task
    };
    // A follow-up run starts from the first run's workspace (already in the blob
    // store), never a new clone, whose branch may have moved since.
    if task.run_number <= 1 {
        let limit = services.config.reconciler.prepare_timeout();
        let preparing = Instant::now();
        let patiently = prepare_patiently(services, &task, preparing + limit);
        let prepared = tokio::select! {
            prepared = held.keep(tokio::time::timeout(limit, patiently)) => prepared?,
            _ = abort.cancelled() => return Err(Interrupted::Shutdown),
        };
        metrics::phase("prepare", preparing.elapsed());
        match prepared {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                prepare_failed(&task, &err);
                let message = format!("cannot prepare the workspace: {err}");
                fail(held, &task, message, "prepare_failed").await?;
                return Ok(None);
            }
            Err(_) => {
                metrics::global().inc(
                    "orchestrator_prepare_failures_total",
                    &[("kind", "timeout")],
                );
                let message = format!(
                    "preparing the workspace took longer than {} s (prepare_timeout_secs)",
                    limit.as_secs()
                );
                fail(held, &task, message, "prepare_timeout").await?;
                return Ok(None);
            }
        }
    }
    let name = run_name(task.id, task.attempt);
    let spec = match launch_spec(services, &task, name.clone()).await {
        Ok(spec) => spec,
        Err(err) => {
            metrics::blob_error("sign");
            let message = format!("cannot sign the agent's URLs: {err}");
            fail(held, &task, message, "sign_failed").await?;
            return Ok(None);
        }
    };
    // Saved before the run exists: fenced, so a cancel during preparation stops here.
    let named = TaskUpdate {
        runner_ref: Some(name.0.clone()),
        ..TaskUpdate::default()
    };
    let task = held.advance(&task, task.status, named).await?;
    let runner = &services.runner;
    if let Err(err) = retry(LAUNCH_TRIES, "launching the agent", || {
        runner.launch(spec.clone())
    })
    .await
    {
        metrics::global().inc("orchestrator_launch_failures_total", &[]);
        stop_run(services, &name).await;
        fail(held, &task, err.to_string(), "launch_failed").await?;
        return Ok(None);
    }
    let running = TaskUpdate {
        deadline_in: Some(deadline_in(&task, &services.config)),
        ..TaskUpdate::default()
    };
    match held.advance(&task, TaskStatus::RunningAgent, running).await {
        Ok(task) => Ok(Some(task)),
        Err(stop) => {
            let_go_of_run(services, &name, &stop).await;
            Err(stop.into())
        }
    }
}

/// Prepares the workspace, again and again after a growing pause while the blob store
/// cannot be reached, until `give_up_at`; then the last error is returned.
async fn prepare_patiently(
    services: &Services,
    task: &Task,
    give_up_at: Instant,
) -> Result<PackStats, PrepareError> {
    let mut pause = Duration::from_millis(250);
    loop {
        match prepare_workspace(services, task).await {
            Err(err) if err.is_transient() && Instant::now() + pause < give_up_at => {
                metrics::blob_error("prepare");
                tracing::warn!(task_id = %task.id, error = %err, ?pause, "cannot prepare the workspace for now; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(PREPARE_PAUSE_MAX);
            }
            prepared => return prepared,
        }
    }
}

/// Counts a failed preparation by what failed.
fn prepare_failed(task: &Task, err: &PrepareError) {
    let kind = match (err, &task.input) {
        (PrepareError::Upload(_) | PrepareError::Store(_), _) => {
            metrics::blob_error("prepare");
            "store"
        }
        (PrepareError::Workspace(_), InputSource::Git { .. }) => "clone",
        (PrepareError::Workspace(_), InputSource::Zip { .. }) => "unzip",
        _ => "other",
    };
    metrics::global().inc("orchestrator_prepare_failures_total", &[("kind", kind)]);
}

/// Fails the task with `message` (fenced); `reason` is the fixed word it is counted
/// under.
pub(crate) async fn fail(
    held: &mut Held,
    task: &Task,
    message: String,
    reason: &'static str,
) -> Result<Task, Stop> {
    tracing::warn!(task_id = %task.id, %message, "task failed");
    let update = TaskUpdate {
        message: Some(message),
        ..TaskUpdate::default()
    };
    let failed = held.advance(task, TaskStatus::Failed, update).await?;
    metrics::task_finished(TaskStatus::Failed, reason);
    Ok(failed)
}

/// After the task slipped away mid-run: a task that is over (cancelled, failed by
/// someone) must not keep its run; one taken over by another worker keeps it.
pub(crate) async fn let_go_of_run(services: &Services, name: &RunHandle, stop: &Stop) {
    // Whoever ended the task announced it (and ended its stream); the worker only
    // stops the run, so the stream's last word is theirs.
    if stop.task_is_over() {
        stop_run(services, name).await;
    } else if let Err(err) = services.runner.detach(name).await {
        tracing::warn!(run = %name, error = %err, "cannot detach from a run");
    }
}

pub(crate) async fn stop_run(services: &Services, name: &RunHandle) {
    if let Err(err) = services.runner.cancel(name).await {
        tracing::warn!(run = %name, error = %err, "cannot stop the agent run");
    }
}
