//! Following a held task's run to its end: events to the cache (through a publisher that
//! never makes the run wait), the lease kept, the deadline enforced.
//!
//! The same loop serves a run this worker launched and one it re-attached to after
//! another worker (or this process before a restart) let go: the runner replays the
//! run's events from the start, then follows it live; each goes to the publisher with
//! its index in the run, so the cache takes the replayed ones only once. A stream that ends without an exit
//! (the watch was cut) is resumed after the events already seen on the next poll, once
//! the runner says the run still goes.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use super::drive::{let_go_of_run, stop_run};
use super::finish::RunEnd;
use super::lease::Held;
use super::{Interrupted, Stop};
use crate::cache::EventPublisher;
use crate::runner::{RunHandle, RunStatus, RunnerError, RunnerEvent};
use crate::services::Services;
use crate::task::{Task, now_ms};

/// Streams the run's events to the cache until it ends, the task slips away (a cancel,
/// a take-over), its deadline passes, or the worker shuts down.
pub(crate) async fn watch_run(
    services: &Services,
    task: &Task,
    held: &mut Held,
    publisher: &EventPublisher,
    abort: &CancellationToken,
) -> Result<RunEnd, Interrupted> {
    let Some(name) = task.runner_ref.clone().map(RunHandle) else {
        return Ok(RunEnd::Lost("the task names no run".to_string()));
    };
    let mut poll = tokio::time::interval(services.config.worker.cancel_poll());
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = 0u64;
    let mut events = match open(services, &name, seen).await {
        Opened::Events(events) => Some(events),
        Opened::Ended(end) => return Ok(end),
        Opened::NotYet => None,
    };
    loop {
        tokio::select! {
            event = next(&mut events), if events.is_some() => match event {
                Some(RunnerEvent::AgentEvent(event)) => {
                    publisher.send(seen, event);
                    seen += 1;
                }
                Some(RunnerEvent::Exited { code, reason }) => return Ok(RunEnd::Exited { code, reason }),
                // Cut: watched again on the next tick, after what was seen.
                None => events = None,
            },
            _ = poll.tick() => {
                if let Err(stop) = held.check().await {
                    let_go_of_run(services, &name, &stop).await;
                    return Err(stop.into());
                }
                if task.deadline_at.is_some_and(|deadline| now_ms() > deadline) {
                    tracing::warn!(task_id = %task.id, run = %name, "deadline passed; stopping the run");
                    stop_run(services, &name).await;
                    return Ok(RunEnd::DeadlineExceeded);
                }
                if events.is_none() {
                    match open(services, &name, seen).await {
                        Opened::Events(opened) => events = Some(opened),
                        Opened::Ended(end) => return Ok(end),
                        Opened::NotYet => {}
                    }
                }
            }
            _ = abort.cancelled() => {
                if let Err(err) = services.runner.detach(&name).await {
                    tracing::warn!(run = %name, error = %err, "cannot detach from a run");
                }
                return Err(Interrupted::Shutdown);
            }
        }
    }
}

async fn next(events: &mut Option<BoxStream<'static, RunnerEvent>>) -> Option<RunnerEvent> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

/// What watching a run from some event on gave.
enum Opened {
    Events(BoxStream<'static, RunnerEvent>),
    /// It cannot be watched: it is over, this way.
    Ended(RunEnd),
    /// The runner failed; try again later.
    NotYet,
}

/// Watches the run from event `skip` on.
async fn open(services: &Services, name: &RunHandle, skip: u64) -> Opened {
    let runner = &services.runner;
    match runner.status(name).await {
        // Everything was seen but the exit: no need to read the events again.
        Ok(RunStatus::Exited { code, reason }) if skip > 0 => {
            Opened::Ended(RunEnd::Exited { code, reason })
        }
        Ok(RunStatus::NotFound) => Opened::Ended(RunEnd::Lost(format!(
            "the runner has no record of run {name} (its host restarted, or it was removed)"
        ))),
        Ok(_) => match runner.watch(name, skip).await {
            Ok(events) => Opened::Events(events),
            Err(RunnerError::UnknownRun(reason)) => Opened::Ended(RunEnd::Lost(reason)),
            Err(err) => {
                tracing::warn!(run = %name, error = %err, "cannot watch a run; retrying");
                Opened::NotYet
            }
        },
        Err(err) => {
            tracing::warn!(run = %name, error = %err, "cannot read a run's status; retrying");
            Opened::NotYet
        }
    }
}

impl From<Stop> for Interrupted {
    fn from(stop: Stop) -> Self {
        Interrupted::Stop(stop)
    }
}
