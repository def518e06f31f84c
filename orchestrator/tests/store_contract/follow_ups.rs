//! Follow-ups: a finished task continued as its next run, the run before archived, in
//! one step with its outbox entry; anything else refused unchanged.

use std::time::Duration;

use TaskStatus::*;
use orchestrator::store::Due;
use orchestrator::{StoreError, TaskStatus, TaskUpdate, TransitionError};
use serde_json::json;

use super::{Fixture, create, git_task, unique_owner, walk};

const TO_COMPLETED: [TaskStatus; 6] = [
    Queued,
    Processing,
    DownloadingCode,
    RunningAgent,
    UploadingResults,
    Completed,
];

pub async fn a_follow_up_archives_the_run_and_queues_the_next(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, git_task(&unique_owner())).await;
    assert_eq!((task.run_number, task.follow_up.as_deref()), (1, None));
    walk(store, task.id, &TO_COMPLETED[..5]).await;
    let update = TaskUpdate {
        message: Some("done".into()),
        result: Some(json!({"status": "completed"})),
        runner_ref: Some("agent-run-1".into()),
        ..TaskUpdate::default()
    };
    store
        .transition(task.id, UploadingResults, Completed, update)
        .await
        .unwrap();
    store.outbox_done(task.id).await.unwrap();

    let next = store.follow_up(task.id, "and the docs").await.unwrap();
    assert_eq!(next.status, Queued);
    assert_eq!(next.run_number, 2);
    assert_eq!(next.follow_up.as_deref(), Some("and the docs"));
    assert_eq!(next.instruction(), "and the docs");
    assert_eq!(next.description, task.description);
    assert_eq!(
        (next.message, next.result, next.runner_ref),
        (None, None, None)
    );
    assert_eq!(next.lease_holder, None);
    assert_eq!(store.get(task.id).await.unwrap().unwrap().run_number, 2);
    let outbox = store
        .due(
            Due::Outbox {
                older_than: Duration::ZERO,
            },
            10_000,
        )
        .await
        .unwrap();
    assert!(outbox.contains(&task.id), "the next run is on the outbox");

    let runs = store.past_runs(task.id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_number, 1);
    assert_eq!(runs[0].instruction, "fix the bug");
    assert_eq!(runs[0].status, Completed);
    assert_eq!(runs[0].message.as_deref(), Some("done"));
    assert_eq!(runs[0].result, Some(json!({"status": "completed"})));

    // The second run fails; a third continues from it.
    walk(store, task.id, &[Queued, Failed]).await;
    let third = store.follow_up(task.id, "try again").await.unwrap();
    assert_eq!(third.run_number, 3);
    let runs = store.past_runs(task.id).await.unwrap();
    let numbers: Vec<u32> = runs.iter().map(|r| r.run_number).collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(runs[1].status, Failed);
    assert_eq!(runs[1].instruction, "and the docs");
}

pub async fn only_a_completed_or_failed_task_takes_a_follow_up(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let queued = create(store, git_task(&owner)).await;
    let err = store.follow_up(queued.id, "more").await.unwrap_err();
    assert!(
        matches!(err, TransitionError::Conflict { actual: Queued, .. }),
        "{err:?}"
    );
    let cancelled = create(store, git_task(&owner)).await;
    walk(store, cancelled.id, &[Queued, Cancelled]).await;
    let err = store.follow_up(cancelled.id, "more").await.unwrap_err();
    assert!(
        matches!(
            err,
            TransitionError::Conflict {
                actual: Cancelled,
                ..
            }
        ),
        "{err:?}"
    );
    let unknown = orchestrator::TaskId::new();
    assert!(matches!(
        store.follow_up(unknown, "more").await.unwrap_err(),
        TransitionError::NotFound(id) if id == unknown
    ));
    // Files deleted after retention: nothing to continue from.
    let purged = create(store, git_task(&owner)).await;
    walk(store, purged.id, &TO_COMPLETED).await;
    store.mark_purged(purged.id).await.unwrap();
    let err = store.follow_up(purged.id, "more").await.unwrap_err();
    assert!(
        matches!(err, TransitionError::Store(StoreError::Refused(_))),
        "{err:?}"
    );
    for id in [queued.id, cancelled.id, purged.id] {
        let task = store.get(id).await.unwrap().unwrap();
        assert_eq!(task.run_number, 1, "a refused follow-up changed nothing");
        assert!(store.past_runs(id).await.unwrap().is_empty());
    }
}
