//! Best-of-N: how an attempt's end turns into the next attempt, or into the task's end.
//!
//! A task asking for N attempts runs them one after the other, each a run of its own
//! from the same starting code (the workspace prepared once), never continuing the one
//! before. When an attempt ends before the last, its record (status, message,
//! `result.json`, the check's verdict inside it) goes to the task's runs and the row is
//! queued again as the next attempt, in one fenced transaction
//! ([`TaskStore::end_attempt`]). When the last one ends, every attempt is ranked by the
//! `attempts` crate (the eval harness ranks and counts pass@k with the same code): the
//! best one's outputs become the task's ([`Task::result_run`]), its pull request
//! included, and the task is `COMPLETED` when that attempt passed (its check passed,
//! or with no check, the agent completed), `FAILED` otherwise.
//!
//! A crash between the steps is harmless: the record is replaced, not added, and the
//! reconciler finishes a run nobody watches through the same path.

use serde_json::Value;

use super::Stop;
use super::lease::Held;
use crate::metrics;
use crate::services::Services;
use crate::store::{AttemptNext, EndedRun};
use crate::task::{RunRecord, Task, TaskStatus, TaskUpdate};
use crate::tasks::{announce, relay};

/// The attempt as the shared ranking sees it.
pub fn candidate(
    task: &Task,
    run_number: u32,
    status: TaskStatus,
    result: Option<&Value>,
) -> attempts::Candidate {
    let number = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
    let check_passed = task.best_of.check.as_ref().map(|_| {
        result
            .and_then(|r| r.pointer("/check/passed"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    });
    attempts::Candidate {
        number: run_number,
        completed: status == TaskStatus::Completed,
        check_passed,
        changed: number(result.and_then(|r| r.get("files_changed"))) > 0,
        tokens: number(result.and_then(|r| r.pointer("/usage/total_tokens"))),
    }
}

/// The candidates of a task's ended attempts.
pub fn candidates(task: &Task, runs: &[RunRecord]) -> Vec<attempts::Candidate> {
    runs.iter()
        .filter(|run| run.run_number <= task.best_of.attempts)
        .map(|run| candidate(task, run.run_number, run.status, run.result.as_ref()))
        .collect()
}

/// Ends the current attempt of a best-of-N `task` (held in `UPLOADING_RESULTS`) as
/// `ended`: queues the next, or after the last, finishes the task with the best one.
pub(crate) async fn end_attempt(
    services: &Services,
    held: &mut Held,
    task: Task,
    ended: EndedRun,
    reason: &'static str,
) -> Result<Task, Stop> {
    let store = &services.store;
    if task.run_number < task.best_of.attempts {
        let queued = store
            .end_attempt(&held.lease, task.status, &ended, AttemptNext::Queue)
            .await
            .map_err(|err| Stop::from_transition(task.id, err))?;
        tracing::info!(task_id = %task.id, attempt = task.run_number, status = %ended.status, "attempt ended; next attempt queued");
        metrics::global().inc("orchestrator_attempts_total", &[("reason", reason)]);
        // The ended attempt's stream closes with its own status; the next has its own.
        announce(
            &*services.cache,
            task.events_id(),
            ended.status,
            ended.message.as_deref(),
        )
        .await;
        announce(&*services.cache, queued.events_id(), queued.status, None).await;
        relay(&**store, &*services.queue, task.id).await;
        return Ok(queued);
    }
    let mut runs = store.past_runs(task.id).await?;
    runs.retain(|run| run.run_number != task.run_number);
    let mut all = candidates(&task, &runs);
    all.push(candidate(
        &task,
        task.run_number,
        ended.status,
        ended.result.as_ref(),
    ));
    let chosen = attempts::best(&all).unwrap_or(task.run_number);
    let passed = attempts::passed_count(&all);
    let (message, result) = if chosen == task.run_number {
        (ended.message.clone(), ended.result.clone())
    } else {
        let record = runs.iter().find(|run| run.run_number == chosen);
        (
            record.and_then(|run| run.message.clone()),
            record.and_then(|run| run.result.clone()),
        )
    };
    let winner = all.iter().find(|c| c.number == chosen).copied();
    let won = winner.is_some_and(|c| c.passed());
    let verdict = match (&task.best_of.check, won) {
        (Some(_), true) => format!(
            "attempt {chosen} of {} kept ({passed} passed the check)",
            all.len()
        ),
        (Some(_), false) => format!("no attempt of {} passed the check", all.len()),
        (None, true) => format!(
            "attempt {chosen} of {} kept ({passed} completed)",
            all.len()
        ),
        (None, false) => format!("no attempt of {} completed", all.len()),
    };
    // A passing check outranks the agent's own ending (a turn limit hit after the fix,
    // say): the task kept a diff that passes.
    let final_status = if won {
        TaskStatus::Completed
    } else {
        TaskStatus::Failed
    };
    let message = match message {
        Some(message) => format!("{verdict}; {message}"),
        None => verdict,
    };
    let named = store
        .end_attempt(
            &held.lease,
            task.status,
            &ended,
            AttemptNext::Choose(chosen),
        )
        .await
        .map_err(|err| Stop::from_transition(task.id, err))?;
    tracing::info!(task_id = %task.id, chosen, passed, status = %final_status, "attempts ranked");
    let update = TaskUpdate {
        message: Some(message),
        result,
        ..TaskUpdate::default()
    };
    let finished = held.advance(&named, final_status, update).await?;
    metrics::task_finished(final_status, reason);
    Ok(finished)
}
