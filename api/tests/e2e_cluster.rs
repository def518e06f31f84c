//! End to end on the cluster profile: the real `api` binary on MySQL (MariaDB) and Redis
//! from `scripts/services`, chosen by its config file alone, with the real `agent-rs`
//! and the scripted model. Each test has a database and a Redis key prefix of its own.
//!
//! Two API processes on the same services show what the profile is for: a task
//! submitted to one is followed over SSE on the other (events through Redis, status
//! through MySQL), and runs once although both have a worker and a reconciler.
//! (Queue and blobs are the embedded ones in those two: both processes share one data
//! folder, as replicas would share an object store.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster_support;
mod e2e_support;
#[path = "../../orchestrator/tests/support/services.rs"]
mod services;

use cluster_support::{ClusterHome, Profile, agent_runs, apply_to_original};
use e2e_support::*;
use serde_json::json;
use services::MySqlDatabase;

/// The task's events after `last_event_id`, as a reconnecting client asks for them.
async fn events_after(api: &Api, id: &str, last_event_id: u64) -> Vec<SseEvent> {
    let response = api
        .http
        .get(api.url(&format!("/api/v1/tasks/{id}/events")))
        .bearer_auth(TOKEN)
        .header("Last-Event-ID", last_event_id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    let mut events = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(event) = reader.next().await {
            events.push(event);
        }
    })
    .await
    .expect("the replayed stream did not end");
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn on_mysql_and_redis_a_zip_task_completes_with_a_diff_that_applies_and_sse_replays() {
    let database = MySqlDatabase::create().await;
    let model = scripted_model(json!(fix_add_steps())).await;
    let cluster = ClusterHome::new(&database, Profile::StoreAndCache);
    let home = &cluster.home;
    let api = cluster.start(&model).await;
    let files = [("calc.py", CALC_PY), ("README.md", "calculator\n")];

    let id = api
        .created_id(api.submit_zip(zip_of(&files), "fix add").await)
        .await;
    let events = api.follow_events(&id).await;
    assert_eq!(
        events.last().unwrap().data["status"],
        "COMPLETED",
        "{events:?}"
    );
    let task = api.task(&id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    let diff = api.artifact(&id, "diff.patch").await;
    assert_eq!(
        apply_to_original(&files, &diff),
        "def add(a, b):\n    return a + b\n"
    );

    // The row is in MySQL, not in a SQLite file.
    assert!(!home.data().join("tasks.db").exists());
    let pool = sqlx::MySqlPool::connect(&database.url).await.unwrap();
    let (status,): (String,) = sqlx::query_as("SELECT status FROM tasks WHERE id = ?")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "COMPLETED");

    // A client that reconnects with Last-Event-ID gets exactly the rest, from Redis.
    let ids: Vec<u64> = events.iter().filter_map(|e| e.id).collect();
    let middle = ids[ids.len() / 2];
    let replayed = events_after(&api, &id, middle).await;
    let replayed_ids: Vec<u64> = replayed.iter().filter_map(|e| e.id).collect();
    let expected: Vec<u64> = ids.iter().copied().filter(|n| *n > middle).collect();
    assert_eq!(replayed_ids, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_submitted_to_one_replica_is_followed_on_the_other_and_runs_once() {
    let database = MySqlDatabase::create().await;
    let model = scripted_model(json!(fix_add_steps())).await;
    let cluster = ClusterHome::new(&database, Profile::StoreAndCache);
    let first = cluster.start(&model).await;
    let second = cluster.start(&model).await;
    let files = [("calc.py", CALC_PY)];

    let id = first
        .created_id(first.submit_zip(zip_of(&files), "fix add").await)
        .await;
    // Followed on the replica that did not take the submission.
    let events = second.follow_events(&id).await;
    assert_eq!(
        events.last().unwrap().data["status"],
        "COMPLETED",
        "{events:?}"
    );
    let kinds: Vec<&str> = events.iter().map(SseEvent::kind).collect();
    assert!(kinds.contains(&"task_started"), "{kinds:?}");
    assert!(kinds.contains(&"task_finished"), "{kinds:?}");
    assert_eq!(second.task(&id).await["status"], "COMPLETED");
    assert_eq!(
        kinds.iter().filter(|k| **k == "task_started").count(),
        1,
        "one run: {kinds:?}"
    );
    assert_eq!(agent_runs(&model), 1, "the agent ran once");
    let task = first.task(&id).await;
    assert_eq!(task["attempt"], 1, "claimed once: {task}");
}
