//! `MySqlTaskStore` on the loopback MariaDB of `scripts/services`: the shared store
//! contract (each test on a database of its own), and what only MySQL adds: migrations
//! from the original table, the server's clock, and transient lock errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/services.rs"]
mod services;
mod store_contract;

use std::sync::Arc;

use orchestrator::TaskStatus::{Processing, Queued};
use orchestrator::store::MySqlConfig;
use orchestrator::{MySqlTaskStore, StoreError, TaskStore, TaskUpdate};
use services::MySqlDatabase;
use store_contract::{Fixture, git_task, keyed, store_contract_tests, unique_owner};

async fn on_mysql() -> Fixture {
    let database = MySqlDatabase::create().await;
    Fixture {
        store: Arc::new(database.store().await),
        _keep: Box::new(database),
    }
}

mod contract {
    use super::*;
    store_contract_tests!(on_mysql);
}

#[tokio::test]
async fn connecting_twice_migrates_once_and_keeps_the_data() {
    let database = MySqlDatabase::create().await;
    let (first, second) = tokio::join!(database.store(), database.store());
    let task = store_contract::create(&first, keyed(&unique_owner(), "k")).await;
    assert_eq!(second.get(task.id).await.unwrap(), Some(task.clone()));
    first.close().await;
    let third = database.store().await;
    assert_eq!(third.get(task.id).await.unwrap(), Some(task));
}

#[tokio::test]
async fn owners_and_keys_compare_case_sensitively() {
    let database = MySqlDatabase::create().await;
    let store = database.store().await;
    let owner = unique_owner();
    let lower = store_contract::create(&store, keyed(&owner, "key")).await;
    let upper = store_contract::create(&store, keyed(&owner, "KEY")).await;
    assert_ne!(lower.id, upper.id);
    store.add_token(&owner, "hash-a").await.unwrap();
    assert_eq!(store.owner_of_token("HASH-A").await.unwrap(), None);
}

#[tokio::test]
async fn a_password_in_the_configured_url_is_refused_without_echoing_it() {
    let config = MySqlConfig {
        url: "mysql://agent:hunter2-secret@127.0.0.1:3306/agent".into(),
        ..MySqlConfig::default()
    };
    let err = MySqlTaskStore::connect(&config).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn the_password_comes_from_the_named_file() {
    let database = MySqlDatabase::create().await;
    let mut url = url::Url::parse(&database.url).unwrap();
    let password = url.password().unwrap().to_string();
    url.set_password(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mysql-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let config = MySqlConfig {
        url: url.to_string(),
        password_env: None,
        password_file: Some(file),
        ..MySqlConfig::default()
    };
    let store = MySqlTaskStore::connect(&config).await.unwrap();
    store_contract::create(&store, git_task(&unique_owner())).await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_error() {
    let config = MySqlConfig {
        acquire_timeout_ms: 500,
        ..MySqlConfig::from_url("mysql://agent:x@127.0.0.1:1/agent")
    };
    let err = MySqlTaskStore::connect(&config).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// A row locked by another transaction past the lock wait: the store reports a transient
/// error (worth a retry), not a failed query, and the retry succeeds once the lock is gone.
#[tokio::test]
async fn a_lock_wait_timeout_is_transient() {
    let database = MySqlDatabase::create().await;
    let store = MySqlTaskStore::connect(&MySqlConfig {
        lock_wait_timeout_secs: 1,
        ..MySqlConfig::from_url(database.url.clone())
    })
    .await
    .unwrap();
    let task = store_contract::create(&store, git_task(&unique_owner())).await;
    let pool = sqlx::MySqlPool::connect(&database.url).await.unwrap();
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM tasks WHERE id = ? FOR UPDATE")
        .bind(task.id.to_string())
        .fetch_one(&mut *blocker)
        .await
        .unwrap();
    let err = store
        .transition(task.id, Queued, Processing, TaskUpdate::default())
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    blocker.rollback().await.unwrap();
    let moved = store
        .transition(task.id, Queued, Processing, TaskUpdate::default())
        .await
        .unwrap();
    assert_eq!(moved.status, Processing);
}

/// Expiry is the server's clock: a lease granted for an hour expires an hour after the
/// server's now, whatever this process's clock says.
#[tokio::test]
async fn lease_times_come_from_the_servers_clock() {
    let database = MySqlDatabase::create().await;
    let store = database.store().await;
    let pool = sqlx::MySqlPool::connect(&database.url).await.unwrap();
    let task = store_contract::create(&store, git_task(&unique_owner())).await;
    let (_, lease) = store
        .claim(task.id, "w/1", std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    let (server_now,): (i64,) =
        sqlx::query_as("SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)")
            .fetch_one(&pool)
            .await
            .unwrap();
    let granted = lease.expires_at - server_now;
    assert!((3_590_000..=3_600_000).contains(&granted), "{granted}");
}
