//! Best-of-N: a task asking for several attempts keeps them, and each ended attempt is
//! recorded and the next queued (or the chosen one named) in one fenced step.

use std::time::Duration;

use TaskStatus::*;
use orchestrator::store::{AttemptNext, Due, EndedRun, Lease};
use orchestrator::task::BestOf;
use orchestrator::{NewTask, Task, TaskStatus, TaskStore, TaskUpdate, TransitionError};
use serde_json::json;

use super::{Fixture, create, git_task, unique_owner};

const LONG: Duration = Duration::from_secs(600);

fn three_attempts(owner: &str) -> NewTask {
    NewTask {
        best_of: BestOf {
            attempts: 3,
            check: Some("python -m pytest -q".into()),
        },
        ..git_task(owner)
    }
}

/// Claims the task and carries it to `UPLOADING_RESULTS` under the lease.
async fn to_uploading(store: &dyn TaskStore, task: &Task, holder: &str) -> Lease {
    let (_, lease) = store.claim(task.id, holder, LONG).await.unwrap();
    let mut from = Processing;
    for to in [DownloadingCode, RunningAgent, UploadingResults] {
        store
            .advance(&lease, from, to, TaskUpdate::default())
            .await
            .unwrap();
        from = to;
    }
    lease
}

fn ended(status: TaskStatus, passed: bool) -> EndedRun {
    EndedRun {
        status,
        message: Some(format!("{status}")),
        result: Some(json!({"status": "completed", "check": {"passed": passed}})),
    }
}

pub async fn a_best_of_task_keeps_its_attempts_and_check(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, three_attempts(&unique_owner())).await;
    assert_eq!(task.best_of.attempts, 3);
    assert_eq!(task.best_of.check.as_deref(), Some("python -m pytest -q"));
    assert_eq!(task.chosen_run, None);
    assert!(task.is_best_of());
    let read = store.get(task.id).await.unwrap().unwrap();
    assert_eq!(read.best_of, task.best_of);
    let plain = create(store, git_task(&unique_owner())).await;
    assert_eq!(plain.best_of, BestOf::default());
    assert!(!plain.is_best_of());
}

pub async fn an_ended_attempt_is_recorded_and_the_next_queued(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, three_attempts(&unique_owner())).await;
    store.outbox_done(task.id).await.unwrap();
    let lease = to_uploading(store, &task, "worker-a/1").await;
    let next = store
        .end_attempt(
            &lease,
            UploadingResults,
            &ended(Failed, false),
            AttemptNext::Queue,
        )
        .await
        .unwrap();
    assert_eq!((next.status, next.run_number), (Queued, 2));
    assert_eq!(next.instruction(), task.description);
    assert_eq!(
        (next.message, next.result, next.runner_ref),
        (None, None, None)
    );
    assert_eq!((next.lease_holder, next.follow_up), (None, None));
    let outbox = store
        .due(
            Due::Outbox {
                older_than: Duration::ZERO,
            },
            10_000,
        )
        .await
        .unwrap();
    assert!(
        outbox.contains(&task.id),
        "the next attempt is on the outbox"
    );
    let runs = store.past_runs(task.id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].run_number, runs[0].status), (1, Failed));
    assert_eq!(runs[0].result.as_ref().unwrap()["check"]["passed"], false);
    // The old lease is over: it cannot end the attempt again.
    let err = store
        .end_attempt(
            &lease,
            UploadingResults,
            &ended(Failed, false),
            AttemptNext::Queue,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransitionError::LeaseLost { .. }), "{err:?}");
    assert_eq!(store.get(task.id).await.unwrap().unwrap().run_number, 2);
}

pub async fn the_last_attempt_names_the_chosen_one_and_a_redo_replaces_its_record(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, three_attempts(&unique_owner())).await;
    for holder in ["w/1", "w/2"] {
        let lease = to_uploading(store, &task, holder).await;
        let passed = holder == "w/2";
        store
            .end_attempt(
                &lease,
                UploadingResults,
                &ended(Completed, passed),
                AttemptNext::Queue,
            )
            .await
            .unwrap();
    }
    let lease = to_uploading(store, &task, "w/3").await;
    // A finish redone (after a crash) records the attempt again, not twice.
    for _ in 0..2 {
        let named = store
            .end_attempt(
                &lease,
                UploadingResults,
                &ended(Failed, false),
                AttemptNext::Choose(2),
            )
            .await
            .unwrap();
        assert_eq!(
            (named.status, named.run_number, named.chosen_run),
            (UploadingResults, 3, Some(2))
        );
        assert_eq!(named.result_run(), 2);
    }
    let runs = store.past_runs(task.id).await.unwrap();
    let numbers: Vec<u32> = runs.iter().map(|run| run.run_number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(runs[2].status, Failed);
    let done = store
        .advance(&lease, UploadingResults, Completed, TaskUpdate::default())
        .await
        .unwrap();
    assert_eq!((done.status, done.chosen_run), (Completed, Some(2)));
    // A best-of-N task takes no follow-up: its runs are attempts.
    let refused = store.follow_up(task.id, "more").await.unwrap_err();
    assert!(refused.to_string().contains("follow-up"), "{refused}");
}

pub async fn ending_an_attempt_needs_the_lease_and_the_status(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, three_attempts(&unique_owner())).await;
    let lease = to_uploading(store, &task, "w/1").await;
    let err = store
        .end_attempt(
            &lease,
            RunningAgent,
            &ended(Failed, false),
            AttemptNext::Queue,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransitionError::Conflict { .. }), "{err:?}");
    let stranger = Lease {
        holder: "someone-else".into(),
        ..lease.clone()
    };
    let err = store
        .end_attempt(
            &stranger,
            UploadingResults,
            &ended(Failed, false),
            AttemptNext::Queue,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransitionError::LeaseLost { .. }), "{err:?}");
    let err = store
        .end_attempt(
            &lease,
            UploadingResults,
            &ended(RunningAgent, false),
            AttemptNext::Queue,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransitionError::Illegal { .. }), "{err:?}");
    // Nothing changed on the way.
    let row = store.get(task.id).await.unwrap().unwrap();
    assert_eq!((row.status, row.run_number), (UploadingResults, 1));
    assert!(store.past_runs(task.id).await.unwrap().is_empty());
}
