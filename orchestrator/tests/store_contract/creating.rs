//! Creating tasks, idempotency, and API tokens.

use std::collections::HashSet;
use std::sync::Arc;

use orchestrator::store::Created;
use orchestrator::{
    InputSource, NewTask, Task, TaskFilter, TaskId, TaskLimits, TaskStatus, now_ms,
};

use super::{Fixture, create, git_task, keyed, unique_owner};

pub async fn create_then_get_returns_every_field(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let before = now_ms();
    let git = NewTask {
        owner: owner.clone(),
        input: InputSource::Git {
            git_url: "ssh://git@example.com/team/repo.git".into(),
            git_ref: Some("v1.2.3".into()),
        },
        description: "add a test for the parser\nwith a second line: ünïcode".into(),
        target_file: Some("src/parser.rs".into()),
        model: Some("gpt-test".into()),
        limits: TaskLimits {
            max_turns: Some(40),
            max_tokens: Some(1 << 40),
            timeout_secs: Some(3600),
        },
        idempotency_key: Some("key-1".into()),
        pull_request: None,
        best_of: Default::default(),
        setup: None,
    };
    let task = create(store, git.clone()).await;
    assert_eq!(task.owner, git.owner);
    assert_eq!(task.input, git.input);
    assert_eq!(task.description, git.description);
    assert_eq!(task.target_file, git.target_file);
    assert_eq!(task.model, git.model);
    assert_eq!(task.limits, git.limits);
    assert_eq!(task.idempotency_key, git.idempotency_key);
    assert_eq!(
        task.status,
        TaskStatus::Queued,
        "a new task is stored queued"
    );
    assert_eq!(task.attempt, 0);
    assert_eq!(
        (&task.message, &task.pr_url, &task.result, &task.runner_ref),
        (&None, &None, &None, &None)
    );
    assert_eq!(task.deadline_at, None);
    assert_eq!((&task.lease_holder, task.lease_expires_at), (&None, None));
    assert!(task.created_at >= before && task.created_at <= now_ms());
    assert_eq!(task.updated_at, task.created_at);
    assert_eq!(store.get(task.id).await.unwrap(), Some(task));

    let zip = NewTask {
        input: InputSource::Zip {
            zip_name: "project.zip".into(),
            zip_key: "tasks/x/input.zip".into(),
        },
        ..git_task(&owner)
    };
    let task = create(store, zip.clone()).await;
    assert_eq!(task.input, zip.input);
    assert_eq!(task.limits, TaskLimits::default());
    assert_eq!(task.idempotency_key, None);
    assert_eq!(store.get(task.id).await.unwrap(), Some(task));
}

pub async fn get_of_unknown_id_is_none(fx: Fixture) {
    assert_eq!(fx.store.get(TaskId::new()).await.unwrap(), None);
}

pub async fn same_idempotency_key_returns_the_first_task(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let first = create(store, keyed(&owner, "k")).await;
    let again = NewTask {
        description: "a different description".into(),
        ..keyed(&owner, "k")
    };
    let (second, created) = store.create(again).await.unwrap();
    assert_eq!(created, Created::Existing);
    assert_eq!(second, first);
}

pub async fn same_key_for_another_owner_makes_a_second_task(fx: Fixture) {
    let store = &*fx.store;
    let a = create(store, keyed(&unique_owner(), "shared")).await;
    let b = create(store, keyed(&unique_owner(), "shared")).await;
    assert_ne!(a.id, b.id);
}

pub async fn creates_without_a_key_are_never_merged(fx: Fixture) {
    let store = &*fx.store;
    let owner = unique_owner();
    let a = create(store, git_task(&owner)).await;
    let b = create(store, git_task(&owner)).await;
    assert_ne!(a.id, b.id);
}

pub async fn concurrent_creates_with_one_key_make_one_task(fx: Fixture) {
    let owner = unique_owner();
    let creates = (0..20).map(|_| {
        let store = Arc::clone(&fx.store);
        let new = keyed(&owner, "burst");
        tokio::spawn(async move { store.create(new).await.unwrap() })
    });
    let results: Vec<(Task, Created)> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let new = results.iter().filter(|(_, c)| *c == Created::New).count();
    assert_eq!(new, 1, "exactly one create makes the task");
    let distinct: HashSet<TaskId> = results.iter().map(|(task, _)| task.id).collect();
    assert_eq!(distinct.len(), 1, "every create returns the same task");
    let page = fx
        .store
        .list(TaskFilter {
            owner: Some(owner),
            limit: 100,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.tasks.len(), 1);
}

pub async fn tokens_map_their_hash_to_one_owner(fx: Fixture) {
    let store = &*fx.store;
    let (alice, bob) = (unique_owner(), unique_owner());
    let hash = format!("hash-{}", TaskId::new());
    assert_eq!(store.owner_of_token(&hash).await.unwrap(), None);
    store.add_token(&alice, &hash).await.unwrap();
    assert_eq!(
        store.owner_of_token(&hash).await.unwrap(),
        Some(alice.clone())
    );
    // Registering the same token again (a dev token at each start) is harmless...
    store.add_token(&alice, &hash).await.unwrap();
    // ...but it cannot change hands.
    assert!(store.add_token(&bob, &hash).await.is_err());
    assert_eq!(store.owner_of_token(&hash).await.unwrap(), Some(alice));
    let other = format!("hash-{}", TaskId::new());
    store.add_token(&bob, &other).await.unwrap();
    assert_eq!(store.owner_of_token(&other).await.unwrap(), Some(bob));
}
