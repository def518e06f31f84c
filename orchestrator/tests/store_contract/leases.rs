//! Leases: claim, renew, fenced writes, release, take-over, and the reconciler's repair
//! queries (one per kind) and the outbox.
//!
//! Expiry is the store's business: a lease granted for 0 ms has run out a moment later,
//! whatever the test's clock says, so no test here depends on clocks agreeing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use TaskStatus::*;
use orchestrator::store::Due;
use orchestrator::{Lease, Task, TaskId, TaskStatus, TaskStore, TaskUpdate, TransitionError};

use super::{Fixture, create, git_task, unique_owner, walk};

const LONG: Duration = Duration::from_secs(3600);

/// Lets a lease granted for 0 ms run out.
async fn expire() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

async fn claimed(store: &dyn TaskStore, holder: &str, ttl: Duration) -> (Task, Lease) {
    let task = create(store, git_task(&unique_owner())).await;
    store.claim(task.id, holder, ttl).await.unwrap()
}

async fn due(store: &dyn TaskStore, due: Due, ours: &[TaskId]) -> Vec<TaskId> {
    let ours: HashSet<&TaskId> = ours.iter().collect();
    store
        .due(due, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|id| ours.contains(id))
        .collect()
}

fn is_lease_lost(err: &TransitionError, now: TaskStatus) -> bool {
    matches!(err, TransitionError::LeaseLost { status, .. } if *status == now)
}

pub async fn claim_takes_a_queued_task_under_a_lease_from_the_stores_clock(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, git_task(&unique_owner())).await;
    let (claimed, lease) = store.claim(task.id, "worker-a/1", LONG).await.unwrap();
    assert_eq!(claimed.status, Processing);
    assert_eq!(claimed.attempt, 1);
    assert_eq!(claimed.lease_holder.as_deref(), Some("worker-a/1"));
    assert_eq!(
        lease,
        Lease {
            task_id: task.id,
            holder: "worker-a/1".into(),
            attempt: 1,
            expires_at: claimed.lease_expires_at.unwrap(),
        }
    );
    let granted = lease.expires_at - claimed.updated_at;
    assert!(
        (granted - 3_600_000).abs() < 5_000,
        "expiry is the store's now plus the ttl: {granted} ms"
    );
    assert_eq!(store.get(task.id).await.unwrap(), Some(claimed));
}

pub async fn concurrent_claims_have_one_winner(fx: Fixture) {
    let task = create(&*fx.store, git_task(&unique_owner())).await;
    let claims = (0..8).map(|n| {
        let store = Arc::clone(&fx.store);
        tokio::spawn(async move { store.claim(task.id, &format!("w/{n}"), LONG).await })
    });
    let results: Vec<_> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins");
    let stored = fx.store.get(task.id).await.unwrap().unwrap();
    assert_eq!(stored.attempt, 1, "the attempt was bumped once");
    assert_eq!(stored.lease_holder, Some(winners[0].1.holder.clone()));
}

pub async fn a_held_task_cannot_be_claimed_or_taken_over(fx: Fixture) {
    let store = &*fx.store;
    let (task, _) = claimed(store, "a/1", LONG).await;
    assert!(store.claim(task.id, "b/1", LONG).await.is_err());
    let err = store
        .take_over(task.id, Processing, 1, "b/1", LONG)
        .await
        .unwrap_err();
    assert!(is_lease_lost(&err, Processing), "{err:?}");
    assert_eq!(store.get(task.id).await.unwrap(), Some(task));
}

pub async fn renew_extends_the_lease_of_its_holder_only(fx: Fixture) {
    let store = &*fx.store;
    let (_, lease) = claimed(store, "a/1", Duration::ZERO).await;
    let renewed = store.renew(&lease, LONG).await.unwrap();
    assert!(renewed.expires_at >= lease.expires_at + 3_000_000);
    let stranger = Lease {
        holder: "b/1".into(),
        ..lease.clone()
    };
    let err = store.renew(&stranger, LONG).await.unwrap_err();
    assert!(is_lease_lost(&err, Processing), "{err:?}");
    let older = Lease {
        attempt: 0,
        ..lease.clone()
    };
    assert!(store.renew(&older, LONG).await.is_err());
}

pub async fn fenced_writes_need_the_lease_and_end_it_on_a_terminal_status(fx: Fixture) {
    let store = &*fx.store;
    let (task, lease) = claimed(store, "a/1", LONG).await;
    let named = store
        .advance(
            &lease,
            Processing,
            Processing,
            TaskUpdate {
                runner_ref: Some("agent-x-1".into()),
                ..TaskUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(named.status, Processing, "from == to records fields only");
    assert_eq!(named.runner_ref.as_deref(), Some("agent-x-1"));

    let stranger = Lease {
        holder: "b/1".into(),
        ..lease.clone()
    };
    let err = store
        .advance(
            &stranger,
            Processing,
            DownloadingCode,
            TaskUpdate::default(),
        )
        .await
        .unwrap_err();
    assert!(is_lease_lost(&err, Processing), "{err:?}");
    let err = store
        .advance(&lease, Queued, Processing, TaskUpdate::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransitionError::Illegal { .. } | TransitionError::Conflict { .. }
        ),
        "{err:?}"
    );

    let failed = store
        .advance(&lease, Processing, Failed, TaskUpdate::default())
        .await
        .unwrap();
    assert_eq!(failed.status, Failed);
    assert_eq!((failed.lease_holder, failed.lease_expires_at), (None, None));
    let err = store.renew(&lease, LONG).await.unwrap_err();
    assert!(is_lease_lost(&err, Failed), "{err:?}");
    assert_eq!(store.get(task.id).await.unwrap().unwrap().status, Failed);
}

pub async fn a_cancel_wins_over_the_lease(fx: Fixture) {
    let store = &*fx.store;
    let (task, lease) = claimed(store, "a/1", LONG).await;
    let cancelled = store
        .transition(task.id, Processing, Cancelled, TaskUpdate::default())
        .await
        .unwrap();
    assert_eq!(cancelled.lease_holder, None);
    let err = store
        .advance(&lease, Processing, DownloadingCode, TaskUpdate::default())
        .await
        .unwrap_err();
    assert!(is_lease_lost(&err, Cancelled), "{err:?}");
    let err = store.renew(&lease, LONG).await.unwrap_err();
    assert!(is_lease_lost(&err, Cancelled), "{err:?}");
}

pub async fn an_expired_lease_is_taken_over_and_its_old_holder_fenced_out(fx: Fixture) {
    let store = &*fx.store;
    let (task, old) = claimed(store, "a/1", Duration::ZERO).await;
    let running = store
        .advance(&old, Processing, RunningAgent, TaskUpdate::default())
        .await
        .unwrap();
    expire().await;
    let (taken, new) = store
        .take_over(task.id, RunningAgent, 1, "b/1", LONG)
        .await
        .unwrap();
    assert_eq!(taken.attempt, 1, "a take-over keeps the attempt");
    assert_eq!(new.holder, "b/1");
    let err = store
        .advance(&old, RunningAgent, UploadingResults, TaskUpdate::default())
        .await
        .unwrap_err();
    assert!(is_lease_lost(&err, RunningAgent), "{err:?}");
    assert!(store.renew(&old, LONG).await.is_err());
    let stored = store.get(task.id).await.unwrap().unwrap();
    assert_eq!(stored.status, running.status);
    assert_eq!(stored.lease_holder.as_deref(), Some("b/1"));
    let err = store
        .take_over(task.id, RunningAgent, 0, "c/1", LONG)
        .await
        .unwrap_err();
    assert!(
        is_lease_lost(&err, RunningAgent),
        "an older attempt: {err:?}"
    );
    let err = store
        .take_over(task.id, DownloadingCode, 1, "c/1", LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransitionError::Conflict {
                actual: RunningAgent,
                ..
            }
        ),
        "{err:?}"
    );
}

pub async fn an_abandoned_preparation_is_claimed_again_under_the_next_attempt(fx: Fixture) {
    let store = &*fx.store;
    let (task, lease) = claimed(store, "a/1", Duration::ZERO).await;
    store
        .advance(
            &lease,
            Processing,
            DownloadingCode,
            TaskUpdate {
                runner_ref: Some("agent-x-1".into()),
                ..TaskUpdate::default()
            },
        )
        .await
        .unwrap();
    expire().await;
    let (again, lease) = store.claim(task.id, "b/1", LONG).await.unwrap();
    assert_eq!(again.status, DownloadingCode, "a re-claim keeps the status");
    assert_eq!(again.attempt, 2);
    assert_eq!(again.runner_ref, None, "the new attempt names its own run");
    assert_eq!(lease.attempt, 2);
    // Running tasks are adopted, never re-claimed under a new attempt.
    store
        .advance(&lease, DownloadingCode, RunningAgent, TaskUpdate::default())
        .await
        .unwrap();
    assert!(store.claim(task.id, "c/1", Duration::ZERO).await.is_err());
}

pub async fn release_lets_anyone_take_the_task_at_once(fx: Fixture) {
    let store = &*fx.store;
    let (task, lease) = claimed(store, "a/1", LONG).await;
    store.release(&lease, LONG).await.unwrap();
    let released = store.get(task.id).await.unwrap().unwrap();
    assert_eq!(released.lease_holder, None);
    assert!(
        due(store, Due::Preparing, &[task.id]).await.is_empty(),
        "not due before its look-again time"
    );
    let err = store.release(&lease, LONG).await.unwrap_err();
    assert!(is_lease_lost(&err, Processing), "{err:?}");
    let (again, _) = store.claim(task.id, "b/1", LONG).await.unwrap();
    assert_eq!(again.attempt, 2);
}

pub async fn each_repair_query_finds_only_its_own_kind(fx: Fixture) {
    let store = &*fx.store;
    let (held, _) = claimed(store, "a/1", LONG).await;
    let (preparing, _) = claimed(store, "a/2", Duration::ZERO).await;
    let (running, lease) = claimed(store, "a/3", Duration::ZERO).await;
    store
        .advance(&lease, Processing, RunningAgent, TaskUpdate::default())
        .await
        .unwrap();
    let (live_run, lease) = claimed(store, "a/4", LONG).await;
    store
        .advance(&lease, Processing, RunningAgent, TaskUpdate::default())
        .await
        .unwrap();
    let (released, lease) = claimed(store, "a/5", LONG).await;
    store.release(&lease, Duration::ZERO).await.unwrap();
    let queued = create(store, git_task(&unique_owner())).await;
    let done = create(store, git_task(&unique_owner())).await;
    walk(store, done.id, &[Queued, Failed]).await;
    expire().await;
    let ours = [
        held.id,
        preparing.id,
        running.id,
        live_run.id,
        released.id,
        queued.id,
        done.id,
    ];

    let mut found = due(store, Due::Preparing, &ours).await;
    found.sort();
    let mut wanted = vec![preparing.id, released.id];
    wanted.sort();
    assert_eq!(found, wanted);
    assert_eq!(due(store, Due::Running, &ours).await, [running.id]);
    let old_queued = Due::Queued {
        older_than: Duration::ZERO,
    };
    assert_eq!(due(store, old_queued, &ours).await, [queued.id]);
    let young_queued = Due::Queued { older_than: LONG };
    assert!(due(store, young_queued, &ours).await.is_empty());
}

pub async fn repair_queries_are_bounded_and_oldest_first(fx: Fixture) {
    let store = &*fx.store;
    let mut expired = Vec::new();
    for n in 0..3 {
        let (task, _) = claimed(store, &format!("a/{n}"), Duration::ZERO).await;
        expired.push(task.id);
        expire().await;
    }
    let found = due(store, Due::Preparing, &expired).await;
    assert_eq!(found, expired, "oldest expiry first");
    assert_eq!(store.due(Due::Preparing, 1).await.unwrap().len(), 1);
    assert!(store.due(Due::Preparing, 0).await.unwrap().is_empty());
}

pub async fn a_resent_queued_task_leaves_the_queued_repair_for_a_period(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, git_task(&unique_owner())).await;
    let period = Due::Queued {
        older_than: Duration::from_millis(300),
    };
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(due(store, period, &[task.id]).await, [task.id]);
    assert!(store.requeued(task.id).await.unwrap());
    assert!(due(store, period, &[task.id]).await.is_empty());
    walk(store, task.id, &[Queued, Processing]).await;
    assert!(!store.requeued(task.id).await.unwrap(), "no longer queued");
}

pub async fn a_new_task_has_an_outbox_entry_until_it_is_sent(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let task = create(store, super::keyed(&owner, "k")).await;
    let (again, _) = store.create(super::keyed(&owner, "k")).await.unwrap();
    assert_eq!(again.id, task.id);
    let any_age = Due::Outbox {
        older_than: Duration::ZERO,
    };
    expire().await;
    assert_eq!(
        due(store, any_age, &[task.id]).await,
        [task.id],
        "one entry, even after an idempotent repeat"
    );
    let young = Due::Outbox { older_than: LONG };
    assert!(due(store, young, &[task.id]).await.is_empty());
    store.outbox_done(task.id).await.unwrap();
    assert!(due(store, any_age, &[task.id]).await.is_empty());
    store.outbox_done(task.id).await.unwrap();
}

/// `older_than: ZERO` means "up to now", the current millisecond included: a row is
/// found by the very next query, whether or not the clock moved since it was written.
/// Many rounds, so that most land within the millisecond (which a strict `<` missed).
pub async fn older_than_zero_includes_the_current_millisecond(fx: Fixture) {
    let store = &*fx.store;
    let zero = Duration::ZERO;
    for _ in 0..25 {
        let task = create(store, git_task(&unique_owner())).await;
        let outbox = due(store, Due::Outbox { older_than: zero }, &[task.id]).await;
        assert_eq!(outbox, [task.id], "the outbox entry just written");
        let queued = due(store, Due::Queued { older_than: zero }, &[task.id]).await;
        assert_eq!(queued, [task.id], "the task just queued");
        walk(store, task.id, &[Queued, Cancelled]).await;
        let expired = due(store, Due::Expired { older_than: zero }, &[task.id]).await;
        assert_eq!(expired, [task.id], "the task just finished");
    }
}
