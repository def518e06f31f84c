//! Listing pages.

use TaskStatus::*;
use orchestrator::store::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use orchestrator::{StoreError, Task, TaskFilter, TaskStatus, TaskStore};

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
    let queued = create(store, git_task(&owner)).await;
    let processing = create(store, git_task(&owner)).await;
    walk(store, processing.id, &[Queued, Processing]).await;
    let failed = create(store, git_task(&owner)).await;
    walk(store, failed.id, &[Queued, Failed]).await;
    for (status, expected) in [
        (Queued, queued.id),
        (Processing, processing.id),
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
