//! Listing pages, and the reconciler's queries for stale and overdue tasks.

use std::collections::HashSet;

use TaskStatus::*;
use orchestrator::store::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use orchestrator::{
    StoreError, Task, TaskFilter, TaskId, TaskStatus, TaskStore, TaskUpdate, now_ms,
};

use super::{Fixture, create, git_task, ids, unique_owner, walk};

async fn list_all(store: &dyn TaskStore, filter: TaskFilter) -> Vec<Vec<Task>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(TaskFilter {
                cursor,
                ..filter.clone()
            })
            .await
            .unwrap();
        pages.push(page.tasks);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
    }
}

pub async fn list_pages_newest_first_without_gaps_or_repeats(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(create(store, git_task(&owner)).await);
    }
    let filter = TaskFilter {
        owner: Some(owner),
        limit: 3,
        ..TaskFilter::default()
    };
    let pages = list_all(store, filter).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let listed: Vec<Task> = pages.into_iter().flatten().collect();
    // Newest first; tasks created in the same millisecond are ordered by id.
    created.sort_by_key(|task| std::cmp::Reverse((task.created_at, task.id.to_string())));
    assert_eq!(ids(&listed), ids(&created));
}

pub async fn list_filters_by_status(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let pending = create(store, git_task(&owner)).await;
    let queued = create(store, git_task(&owner)).await;
    walk(store, queued.id, &[Pending, Queued]).await;
    let failed = create(store, git_task(&owner)).await;
    walk(store, failed.id, &[Pending, Failed]).await;
    for (status, expected) in [
        (Pending, pending.id),
        (Queued, queued.id),
        (Failed, failed.id),
    ] {
        let page = store
            .list(TaskFilter {
                owner: Some(owner.clone()),
                status: Some(status),
                limit: 10,
                cursor: None,
            })
            .await
            .unwrap();
        assert_eq!(ids(&page.tasks), [expected], "{status}");
        assert_eq!(page.next_cursor, None);
    }
}

pub async fn list_shows_only_the_owners_tasks(fx: Fixture) {
    let store = &*fx.store;
    let (alice, bob) = (unique_owner(), unique_owner());
    let a = create(store, git_task(&alice)).await;
    let b = create(store, git_task(&bob)).await;
    for (owner, expected) in [(alice, a.id), (bob, b.id)] {
        let page = store
            .list(TaskFilter {
                owner: Some(owner),
                limit: 10,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&page.tasks), [expected]);
    }
}

pub async fn list_caps_the_page_size_and_defaults_an_unset_one(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    for _ in 0..101 {
        create(store, git_task(&owner)).await;
    }
    let page = store
        .list(TaskFilter {
            owner: Some(owner.clone()),
            limit: 10_000,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.tasks.len(), MAX_PAGE_SIZE as usize);
    let default = store
        .list(TaskFilter {
            owner: Some(owner.clone()),
            limit: 0,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(default.tasks.len(), DEFAULT_PAGE_SIZE as usize);
    assert!(default.next_cursor.is_some());
    let rest = store
        .list(TaskFilter {
            owner: Some(owner),
            limit: 10_000,
            cursor: page.next_cursor,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.tasks.len(), 1);
    assert_eq!(rest.next_cursor, None);
}

pub async fn list_refuses_a_cursor_it_did_not_hand_out(fx: Fixture) {
    for forged in ["not a cursor", "", "%%%", "MTIz"] {
        let err = fx
            .store
            .list(TaskFilter {
                owner: Some(unique_owner()),
                limit: 10,
                cursor: Some(forged.into()),
                ..TaskFilter::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidCursor(_)),
            "{forged:?}: {err:?}"
        );
    }
}

pub async fn stale_selects_by_status_and_age_oldest_first(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let queued = create(store, git_task(&owner)).await;
    let queued = walk(store, queued.id, &[Pending, Queued]).await;
    let running = create(store, git_task(&owner)).await;
    let running = walk(
        store,
        running.id,
        &[Pending, Queued, Processing, DownloadingCode, RunningAgent],
    )
    .await;
    let done = create(store, git_task(&owner)).await;
    walk(store, done.id, &[Pending, Failed]).await;
    let pending = create(store, git_task(&owner)).await;
    let ours: HashSet<TaskId> = [queued.id, running.id, done.id, pending.id].into();
    let mine = |tasks: Vec<Task>| -> Vec<Task> {
        tasks.into_iter().filter(|t| ours.contains(&t.id)).collect()
    };

    let later = now_ms() + 1;
    let found = mine(
        store
            .stale(&[Queued, RunningAgent], later, 10_000)
            .await
            .unwrap(),
    );
    let found_ids: HashSet<TaskId> = found.iter().map(|t| t.id).collect();
    assert_eq!(found_ids, [queued.id, running.id].into());
    assert!(
        found.windows(2).all(|w| w[0].updated_at <= w[1].updated_at),
        "oldest first"
    );

    // `updated_before` is exclusive: a task updated at that instant is not stale yet.
    let found = mine(
        store
            .stale(&[Queued], queued.updated_at, 10_000)
            .await
            .unwrap(),
    );
    assert!(found.is_empty(), "{found:?}");
    assert!(store.stale(&[], later, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .stale(&[Queued, RunningAgent], later, 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn past_deadline_selects_live_tasks_whose_deadline_passed(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let now = now_ms();
    let with_deadline = |deadline_at| TaskUpdate {
        deadline_at: Some(deadline_at),
        ..TaskUpdate::default()
    };
    let overdue = create(store, git_task(&owner)).await;
    store
        .transition(overdue.id, Pending, Queued, with_deadline(now - 1_000))
        .await
        .unwrap();
    let in_time = create(store, git_task(&owner)).await;
    store
        .transition(in_time.id, Pending, Queued, with_deadline(now + 3_600_000))
        .await
        .unwrap();
    let finished = create(store, git_task(&owner)).await;
    store
        .transition(finished.id, Pending, Queued, with_deadline(now - 1_000))
        .await
        .unwrap();
    walk(store, finished.id, &[Queued, Cancelled]).await;
    let no_deadline = create(store, git_task(&owner)).await;

    let ours: HashSet<TaskId> = [overdue.id, in_time.id, finished.id, no_deadline.id].into();
    let found: Vec<TaskId> = store
        .past_deadline(now, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .filter(|id| ours.contains(id))
        .collect();
    assert_eq!(found, [overdue.id]);
}
