//! End to end on the cluster profile: the real `api` binary on MySQL (MariaDB) and Redis
//! from `scripts/services`, chosen by its config file alone, with the real `agent-rs`
//! and the scripted model. Each test has a database and a Redis key prefix of its own.
//!
//! Two API processes on the same services show what the profile is for: a task
//! submitted to one is followed over SSE on the other (events through Redis, status
//! through MySQL), and runs once although both have a worker and a reconciler.
//! (Queue and blobs are still the embedded ones here: both processes share one data
//! folder, as replicas would share an object store.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;
#[path = "../../orchestrator/tests/support/services.rs"]
mod services;

use std::process::Command;

use e2e_support::*;
use serde_json::json;
use services::MySqlDatabase;

/// A home whose config puts the store on `database` and the cache on Redis under a
/// fresh prefix. The password goes to a file beside the config, never into it.
fn cluster_home(database: &MySqlDatabase) -> Home {
    let mut url = url::Url::parse(&database.url).unwrap();
    let password = url.password().unwrap_or_default().to_string();
    url.set_password(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("mysql-password");
    std::fs::write(&password_file, password).unwrap();
    let config = format!(
        "[orchestrator.store]\nbackend = \"mysql\"\n\
         [orchestrator.store.mysql]\nurl = \"{url}\"\npassword_file = \"{}\"\n\
         [orchestrator.cache]\nbackend = \"redis\"\n\
         [orchestrator.cache.redis]\nurl = \"{}\"\nkey_prefix = \"e2e-{}\"\n",
        password_file.display(),
        services::redis_url(),
        uuid::Uuid::new_v4().simple(),
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    Home { dir }
}

fn apply_to_original(files: &[(&str, &str)], diff: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        std::fs::write(dir.path().join(path), content).unwrap();
    }
    std::fs::write(dir.path().join("fix.patch"), diff).unwrap();
    let applied = Command::new("git")
        .args(["apply", "fix.patch"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(applied.status.success(), "git apply: {applied:?}\n{diff}");
    std::fs::read_to_string(dir.path().join("calc.py")).unwrap()
}

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

/// How many runs of the agent the model saw: each run starts with a request whose
/// conversation holds no assistant turn yet.
fn agent_runs(model: &scripted_model::ScriptedServer) -> usize {
    model
        .requests()
        .iter()
        .filter(|request| {
            !request.body["messages"]
                .as_array()
                .is_some_and(|messages| messages.iter().any(|m| m["role"] == "assistant"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_mysql_and_redis_a_zip_task_completes_with_a_diff_that_applies_and_sse_replays() {
    let database = MySqlDatabase::create().await;
    let model = scripted_model(json!(fix_add_steps())).await;
    let home = cluster_home(&database);
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
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
    let home = cluster_home(&database);
    let first = Api::start(&home, "127.0.0.1:0", &model).await;
    let second = Api::start(&home, "127.0.0.1:0", &model).await;
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
