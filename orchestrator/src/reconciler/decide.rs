//! What to do with a claimed task whose lease expired: a pure function of its row, the
//! run's status and the clock, so every case is a unit test.

use crate::config::OrchestratorConfig;
use crate::runner::RunStatus;
use crate::task::{Task, TaskStatus};
use crate::worker::RunEnd;

/// What a pass saw about one task besides its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Now, in ms since the epoch.
    pub now: i64,
    /// The status of the run the row names; `None` when it names none.
    pub run: Option<Result<RunStatus, String>>,
}

/// The one step to take for a task nobody holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Preparation was abandoned before any run started: claim it again under the next
    /// attempt (released and sent to a worker).
    Retry,
    /// The attempts are used up: `FAILED` with this message.
    Fail(String),
    /// A run was launched but the row never said so (the launcher died right after):
    /// record it as running, then decide again.
    RecordLaunch,
    /// The run goes on and nobody watches it: hand it to a worker, which re-attaches.
    Adopt,
    /// The run is over, or gone: finish the task from how it ended and its result.
    Finish(RunEnd),
    /// Past its deadline: stop the run, `FAILED`.
    DeadlineExceeded,
    /// Cannot tell now (the runner did not answer, or a missing run is still young):
    /// look again later.
    Later(String),
}

/// Decides the step for `task`, a claimed task whose lease expired.
pub fn decide(task: &Task, seen: &Observation, config: &OrchestratorConfig) -> Action {
    match task.status {
        TaskStatus::Processing | TaskStatus::DownloadingCode => preparing(task, seen, config),
        TaskStatus::RunningAgent | TaskStatus::UploadingResults => running(task, seen, config),
        other => Action::Later(format!("{other} is not a claimed status")),
    }
}

fn preparing(task: &Task, seen: &Observation, config: &OrchestratorConfig) -> Action {
    match &seen.run {
        Some(Ok(RunStatus::NotFound)) | None => {}
        Some(Ok(_)) => return Action::RecordLaunch,
        Some(Err(err)) => {
            return Action::Later(format!("cannot tell whether its run started: {err}"));
        }
    }
    let max = config.worker.max_attempts.max(1);
    if task.attempt >= max {
        Action::Fail(format!(
            "gave up after {} attempts: each time the worker preparing the task stopped \
             (crashed or restarted) before the agent started",
            task.attempt
        ))
    } else {
        Action::Retry
    }
}

fn running(task: &Task, seen: &Observation, config: &OrchestratorConfig) -> Action {
    if task.deadline_at.is_some_and(|deadline| seen.now > deadline) {
        return Action::DeadlineExceeded;
    }
    match &seen.run {
        None => Action::Finish(RunEnd::Lost("the task names no run".to_string())),
        Some(Err(err)) => Action::Later(format!("cannot read its run's status: {err}")),
        Some(Ok(RunStatus::Pending | RunStatus::Running)) => Action::Adopt,
        Some(Ok(RunStatus::Exited { code, reason })) => Action::Finish(RunEnd::Exited {
            code: *code,
            reason: reason.clone(),
        }),
        Some(Ok(RunStatus::NotFound)) => {
            let running_for = seen.now.saturating_sub(task.updated_at);
            let grace = i64::try_from(config.reconciler.lost_after_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX);
            if running_for < grace {
                Action::Later("its run is not visible yet".to_string())
            } else {
                Action::Finish(RunEnd::Lost(
                    "its run is gone without an exit record (host restarted?)".to_string(),
                ))
            }
        }
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
