//! Tokens as operators manage them, the counts of unfinished tasks, and the retention
//! query: what `api token list|revoke`, the per-owner cap, `/metrics` and the janitor
//! rely on.

use std::time::Duration;

use orchestrator::store::{Due, TOKEN_ID_LEN};
use orchestrator::{TaskId, TaskStatus};

use super::*;

/// A token hash as the API makes them: 64 hex digits.
fn hex_hash() -> String {
    format!("{}{}", TaskId::new().0.simple(), TaskId::new().0.simple())
}

pub async fn tokens_are_listed_by_id_and_a_revoked_one_is_refused(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let (kept, revoked) = (hex_hash(), hex_hash());
    store.add_token(&owner, &kept).await.unwrap();
    store.add_token(&owner, &revoked).await.unwrap();
    let mine = |tokens: Vec<orchestrator::TokenInfo>| {
        tokens
            .into_iter()
            .filter(|t| t.owner == owner)
            .collect::<Vec<_>>()
    };
    let listed = mine(store.list_tokens().await.unwrap());
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|t| t.id.len() == TOKEN_ID_LEN));
    assert!(listed.iter().all(|t| t.revoked_at.is_none()));
    assert!(listed.iter().any(|t| t.id == revoked[..TOKEN_ID_LEN]));

    let info = store
        .revoke_token(&revoked[..TOKEN_ID_LEN])
        .await
        .unwrap()
        .expect("the token exists");
    assert_eq!(info.owner, owner);
    let first = info.revoked_at.expect("revoked");
    assert_eq!(store.owner_of_token(&revoked).await.unwrap(), None);
    assert_eq!(
        store.owner_of_token(&kept).await.unwrap(),
        Some(owner.clone())
    );
    // Revoking again keeps the first time; a revoked token cannot be added back.
    let again = store
        .revoke_token(&revoked[..TOKEN_ID_LEN])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked_at, Some(first));
    assert!(store.add_token(&owner, &revoked).await.is_err());
    assert_eq!(store.owner_of_token(&revoked).await.unwrap(), None);

    let unknown = &hex_hash()[..TOKEN_ID_LEN];
    assert_eq!(store.revoke_token(unknown).await.unwrap(), None);
    assert!(store.revoke_token("not-an-id").await.is_err());
    assert!(
        store.revoke_token("%").await.is_err(),
        "no pattern reaches SQL"
    );
}

pub async fn live_tasks_counts_an_owners_unfinished_tasks_only(fx: Fixture) {
    let store = &*fx.store;
    let (alice, bob) = (unique_owner(), unique_owner());
    assert_eq!(store.live_tasks(&alice).await.unwrap(), 0);
    let a = create(store, git_task(&alice)).await;
    create(store, git_task(&alice)).await;
    create(store, git_task(&bob)).await;
    assert_eq!(store.live_tasks(&alice).await.unwrap(), 2);
    walk(store, a.id, &[TaskStatus::Queued, TaskStatus::Cancelled]).await;
    assert_eq!(store.live_tasks(&alice).await.unwrap(), 1);
    assert_eq!(store.live_tasks(&bob).await.unwrap(), 1);
}

pub async fn count_live_groups_unfinished_tasks_by_status(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let count = |counts: &[(TaskStatus, u64)], status| {
        counts
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, n)| *n)
            .unwrap_or_default()
    };
    let before = store.count_live().await.unwrap();
    let moved = create(store, git_task(&owner)).await;
    create(store, git_task(&owner)).await;
    let done = create(store, git_task(&owner)).await;
    walk(
        store,
        moved.id,
        &[TaskStatus::Queued, TaskStatus::Processing],
    )
    .await;
    walk(store, done.id, &[TaskStatus::Queued, TaskStatus::Cancelled]).await;
    let after = store.count_live().await.unwrap();
    assert!(
        after.iter().all(|(status, _)| !status.is_terminal()),
        "{after:?}"
    );
    // Other tests may share the database: at least ours were counted.
    assert!(count(&after, TaskStatus::Queued) > count(&before, TaskStatus::Queued));
    assert!(count(&after, TaskStatus::Processing) > count(&before, TaskStatus::Processing));
}

pub async fn finished_tasks_are_due_for_purging_until_marked(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let done = create(store, git_task(&owner)).await;
    let live = create(store, git_task(&owner)).await;
    walk(store, done.id, &[TaskStatus::Queued, TaskStatus::Cancelled]).await;
    let expired = |older_than| async move {
        store
            .due(Due::Expired { older_than }, 10_000)
            .await
            .unwrap()
    };
    // Finished now: `older_than: ZERO` includes the current millisecond.
    let now = expired(Duration::ZERO).await;
    assert!(now.contains(&done.id));
    assert!(!now.contains(&live.id), "a live task is never purged");
    assert!(
        !expired(Duration::from_secs(3600)).await.contains(&done.id),
        "not yet past a longer retention"
    );
    store.mark_purged(done.id).await.unwrap();
    assert!(!expired(Duration::ZERO).await.contains(&done.id));
    assert_eq!(
        store.get(done.id).await.unwrap().unwrap().status,
        TaskStatus::Cancelled,
        "the row stays"
    );
}
