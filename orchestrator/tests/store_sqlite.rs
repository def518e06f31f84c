//! `SqliteTaskStore`: the shared store contract, on an in-memory database and on a file,
//! and what only a file gives: data that survives a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod store_contract;

use std::sync::Arc;

use orchestrator::{
    InputSource, NewTask, SqliteTaskStore, TaskLimits, TaskStatus, TaskStore, TaskUpdate,
};
use store_contract::{Fixture, store_contract_tests};

async fn in_memory() -> Fixture {
    Fixture {
        store: Arc::new(SqliteTaskStore::open_in_memory().await.unwrap()),
        _keep: Box::new(()),
    }
}

async fn on_file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteTaskStore::open(dir.path().join("tasks.db"))
        .await
        .unwrap();
    Fixture {
        store: Arc::new(store),
        _keep: Box::new(dir),
    }
}

mod memory {
    use super::*;
    store_contract_tests!(in_memory);
}

mod file {
    use super::*;
    store_contract_tests!(on_file);
}

fn new_task() -> NewTask {
    NewTask {
        owner: "alice".into(),
        input: InputSource::Zip {
            zip_name: "code.zip".into(),
            zip_key: "tasks/1/input.zip".into(),
        },
        description: "rename the module".into(),
        target_file: None,
        model: None,
        limits: TaskLimits::default(),
        idempotency_key: Some("restart".into()),
        pull_request: None,
        best_of: Default::default(),
        setup: None,
    }
}

#[tokio::test]
async fn reopening_the_file_keeps_tasks_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.db");
    let store = SqliteTaskStore::open(&path).await.unwrap();
    let (task, _) = store.create(new_task()).await.unwrap();
    let queued = store
        .transition(
            task.id,
            TaskStatus::Queued,
            TaskStatus::Processing,
            TaskUpdate::default(),
        )
        .await
        .unwrap();
    store.add_token("alice", "token-hash").await.unwrap();
    store.close().await;

    let reopened = SqliteTaskStore::open(&path).await.unwrap();
    assert_eq!(reopened.get(task.id).await.unwrap(), Some(queued.clone()));
    assert_eq!(
        reopened
            .owner_of_token("token-hash")
            .await
            .unwrap()
            .as_deref(),
        Some("alice")
    );
    // The idempotency key still holds across the restart.
    let (again, created) = reopened.create(new_task()).await.unwrap();
    assert_eq!(created, orchestrator::Created::Existing);
    assert_eq!(again, queued);
}

#[tokio::test]
async fn opening_an_up_to_date_database_again_migrates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.db");
    let first = SqliteTaskStore::open(&path).await.unwrap();
    let (task, _) = first.create(new_task()).await.unwrap();
    // A second store on the same file while the first is open, then a third after both
    // closed: each runs the migrations, which must find nothing to do.
    let second = SqliteTaskStore::open(&path).await.unwrap();
    assert_eq!(second.get(task.id).await.unwrap(), Some(task.clone()));
    first.close().await;
    second.close().await;
    let third = SqliteTaskStore::open(&path).await.unwrap();
    assert_eq!(third.get(task.id).await.unwrap(), Some(task));
}

#[tokio::test]
async fn open_creates_missing_parent_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("db").join("tasks.db");
    let store = SqliteTaskStore::open(&path).await.unwrap();
    store.create(new_task()).await.unwrap();
    assert!(path.is_file());
}

#[tokio::test]
async fn open_reports_a_path_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let err = SqliteTaskStore::open(blocker.join("tasks.db"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, orchestrator::StoreError::Unavailable { .. })
            && err.to_string().contains("a-file"),
        "{err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept as the source"
    );
}

#[tokio::test]
async fn a_limit_too_large_for_the_database_is_refused() {
    let store = SqliteTaskStore::open_in_memory().await.unwrap();
    let new = NewTask {
        limits: TaskLimits {
            max_tokens: Some(u64::MAX),
            ..TaskLimits::default()
        },
        ..new_task()
    };
    let err = store.create(new).await.unwrap_err();
    assert!(err.to_string().contains("max_tokens"), "{err}");
}

/// A database an earlier version left: only the first migration applied, a task stored
/// `PENDING` and never queued.
#[tokio::test]
async fn upgrading_queues_pending_tasks_through_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let old_migrations = dir.path().join("migrations");
    std::fs::create_dir(&old_migrations).unwrap();
    let first = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite/0001_tasks_and_tokens.sql"
    );
    std::fs::copy(first, old_migrations.join("0001_tasks_and_tokens.sql")).unwrap();
    let path = dir.path().join("tasks.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(old_migrations.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let id = orchestrator::TaskId::new();
    sqlx::query(
        "INSERT INTO tasks (id, owner, input_type, git_url, description, status, created_at, \
         updated_at) VALUES (?, 'alice', 'GIT', 'https://example.com/r.git', 'x', 'PENDING', 1, 1)",
    )
    .bind(id.to_string())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = SqliteTaskStore::open(&path).await.unwrap();
    let task = store.get(id).await.unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Queued);
    let outbox = store
        .due(
            orchestrator::store::Due::Outbox {
                older_than: std::time::Duration::ZERO,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(outbox, [id]);
}
