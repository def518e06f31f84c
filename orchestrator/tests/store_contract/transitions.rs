//! Status changes: compare-and-set, legality, and the fields set with a move.

use std::sync::Arc;
use std::time::Duration;

use TaskStatus::*;
use orchestrator::{Task, TaskId, TaskStatus, TaskUpdate, TransitionError};
use serde_json::json;

use super::{Fixture, create, git_task, unique_owner, walk};

pub async fn concurrent_transitions_from_one_status_have_one_winner(fx: Fixture) {
    let task = create(&*fx.store, git_task(&unique_owner())).await;
    let moves = (0..8).map(|n| {
        let store = Arc::clone(&fx.store);
        let update = TaskUpdate {
            message: Some(format!("mover-{n}")),
            ..TaskUpdate::default()
        };
        tokio::spawn(async move { store.transition(task.id, Queued, Processing, update).await })
    });
    let results: Vec<_> = futures_util::future::join_all(moves)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<&Task> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one move wins");
    for result in &results {
        if let Err(err) = result {
            assert!(
                matches!(
                    err,
                    TransitionError::Conflict { id, expected: Queued, actual: Processing }
                        if *id == task.id
                ),
                "loser sees the actual status: {err:?}"
            );
        }
    }
    let stored = fx.store.get(task.id).await.unwrap().unwrap();
    assert_eq!(stored.message, winners[0].message);
}

pub async fn transition_applies_its_update_with_the_move(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, git_task(&unique_owner())).await;
    let processing = store
        .transition(
            task.id,
            Queued,
            Processing,
            TaskUpdate {
                message: Some("preparing".into()),
                deadline_in: Some(Duration::from_secs(60)),
                ..TaskUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(processing.status, Processing);
    assert_eq!(processing.message.as_deref(), Some("preparing"));
    let deadline = processing.deadline_at.unwrap();
    assert!(
        (deadline - processing.updated_at - 60_000).abs() < 5_000,
        "the deadline is set from the store's clock: {deadline} vs {}",
        processing.updated_at
    );
    assert!(processing.updated_at >= task.updated_at);
    assert_eq!(processing.attempt, 0);

    let named = store
        .transition(
            task.id,
            Processing,
            DownloadingCode,
            TaskUpdate {
                runner_ref: Some("agent-x-1".into()),
                ..TaskUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(named.runner_ref.as_deref(), Some("agent-x-1"));
    assert_eq!(
        named.message.as_deref(),
        Some("preparing"),
        "a field left None keeps its value"
    );
    assert_eq!(named.deadline_at, processing.deadline_at);

    walk(
        store,
        task.id,
        &[DownloadingCode, RunningAgent, UploadingResults],
    )
    .await;
    let result = json!({"status": "completed", "turns": 7, "notes": ["a", "b"]});
    let done = store
        .transition(
            task.id,
            UploadingResults,
            Completed,
            TaskUpdate {
                message: Some("done".into()),
                pr_url: Some("https://example.com/pr/1".into()),
                result: Some(result.clone()),
                ..TaskUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, Completed);
    assert_eq!(done.result, Some(result));
    assert_eq!(done.pr_url.as_deref(), Some("https://example.com/pr/1"));
    assert_eq!(done.message.as_deref(), Some("done"));
    assert_eq!(store.get(task.id).await.unwrap(), Some(done));
}

pub async fn transition_from_a_status_the_task_left_is_a_conflict(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, git_task(&unique_owner())).await;
    walk(store, task.id, &[Queued, Processing]).await;
    let err = store
        .transition(task.id, Queued, Failed, TaskUpdate::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransitionError::Conflict {
                expected: Queued,
                actual: Processing,
                ..
            }
        ),
        "{err:?}"
    );
}

pub async fn terminal_states_are_final(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    for terminal in [Completed, Failed, Cancelled] {
        let task = create(store, git_task(&owner)).await;
        let mut path = vec![Queued, Processing, DownloadingCode, RunningAgent];
        path.extend([UploadingResults, terminal]);
        let finished = walk(store, task.id, &path).await;
        assert_eq!(finished.status, terminal);
        for next in TaskStatus::ALL {
            let err = store
                .transition(task.id, terminal, next, TaskUpdate::default())
                .await
                .unwrap_err();
            assert!(
                matches!(err, TransitionError::Illegal { .. }),
                "{terminal} -> {next}"
            );
        }
        // A worker that still believes the task is running is told where it is.
        let err = store
            .transition(task.id, RunningAgent, Failed, TaskUpdate::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransitionError::Conflict { actual, .. } if actual == terminal),
            "{err:?}"
        );
        assert_eq!(store.get(task.id).await.unwrap(), Some(finished));
    }
}

pub async fn backward_moves_are_refused_and_change_nothing(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, git_task(&unique_owner())).await;
    let running = walk(
        store,
        task.id,
        &[Queued, Processing, DownloadingCode, RunningAgent],
    )
    .await;
    for (from, to) in [
        (RunningAgent, Queued),
        (RunningAgent, Pending),
        (RunningAgent, RunningAgent),
        (RunningAgent, Completed),
    ] {
        let err = store
            .transition(
                task.id,
                from,
                to,
                TaskUpdate {
                    message: Some("must not stick".into()),
                    ..TaskUpdate::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransitionError::Illegal { from: f, to: t } if f == from && t == to),
            "{from} -> {to}: {err:?}"
        );
    }
    assert_eq!(store.get(task.id).await.unwrap(), Some(running));
}

pub async fn transition_of_unknown_task_is_not_found(fx: Fixture) {
    let id = TaskId::new();
    let err = fx
        .store
        .transition(id, Queued, Processing, TaskUpdate::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransitionError::NotFound(missing) if missing == id),
        "{err:?}"
    );
}
