//! The worker with the container runner on real Podman: a zip task in, a `diff.patch`
//! out, with the agent image's `agent-rs` injected into an environment image that has
//! none, no network but the run's egress proxy, and every byte through the local blob
//! store's signed URLs served over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod container_support;
mod worker_support;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use container_support::Engine;
use orchestrator::blob::{LocalBlobStore, SignedQuery, generate_signing_key};
use orchestrator::worker::output_key;
use orchestrator::{BlobStore, Services, TaskLimits, TaskStatus};
use scripted_model::{Script, ScriptedServer};
use worker_support::*;

/// Quotes, spaces and `$`: the secrets file must carry them exactly.
const API_KEY: &str = "sk-it's $HOME \"quoted\"";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn get_blob(
    State(blobs): State<Arc<LocalBlobStore>>,
    Path(key): Path<String>,
    Query(query): Query<SignedQuery>,
) -> Result<Vec<u8>, StatusCode> {
    blobs
        .verify("GET", &key, query.expires, &query.sig, now_secs())
        .map_err(|_| StatusCode::FORBIDDEN)?;
    blobs
        .get_bytes(&key, 1 << 30)
        .await
        .map_err(|_| StatusCode::NOT_FOUND)
}

async fn put_blob(
    State(blobs): State<Arc<LocalBlobStore>>,
    Path(key): Path<String>,
    Query(query): Query<SignedQuery>,
    body: Bytes,
) -> StatusCode {
    if blobs
        .verify("PUT", &key, query.expires, &query.sig, now_secs())
        .is_err()
    {
        return StatusCode::FORBIDDEN;
    }
    match blobs.put_bytes(&key, body.to_vec()).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_runs_a_task_in_a_container_to_a_diff() {
    let engine = Engine::start();
    let model = ScriptedServer::start(
        Script::from_json(
            &serde_json::json!({"model": "scripted", "steps": [
                {"type": "tool_calls", "calls": [
                    {"name": "edit_file_content", "arguments": {
                        "file_path": "calc.py",
                        "old_text": "return a - b",
                        "new_text": "return a + b"
                    }}
                ]},
                {"type": "message", "content": "Fixed `add`."}
            ]})
            .to_string(),
        )
        .unwrap(),
    )
    .await
    .unwrap();

    let data = DataDir::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let config = test_config(&data, |c| {
        c.model.base_url = Some(model.base_url());
        c.model.model = Some("scripted".to_string());
        c.model.api_key = Some(secrecy::SecretString::from(API_KEY));
    });
    let (mut services, parts) =
        Services::embedded(config, &base_url, generate_signing_key().unwrap())
            .await
            .unwrap();
    let runner = engine.runner(&data.path().join("containers"));
    runner.ping().await.unwrap();
    services.runner = Arc::new(runner);
    let app = Router::new()
        .route("/blobs/{*key}", get(get_blob).put(put_blob))
        .with_state(parts.blobs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let harness = Harness::from_parts(services, parts);
    let (_shutdown, _worker) = harness.start_worker();

    let submitted_at_ms = orchestrator::task::now_ms();
    let task = harness
        .submit_zip(
            &[("calc.py", "def add(a, b):\n    return a - b\n")],
            TaskLimits::default(),
        )
        .await;
    let events = harness.events_until_closed(task.id).await;

    let done = harness.get(task.id).await;
    assert_eq!(
        done.status,
        TaskStatus::Completed,
        "{done:?}\nevents: {events:?}"
    );
    assert_eq!(
        done.result.as_ref().unwrap()["final_message"],
        "Fixed `add`."
    );
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|event| event["type"].as_str())
        .collect();
    assert!(kinds.contains(&"task_started"), "{kinds:?}");
    assert!(kinds.contains(&"tool_call"), "{kinds:?}");
    assert!(kinds.contains(&"task_finished"), "{kinds:?}");

    let diff = harness
        .services
        .blobs
        .get_bytes(&output_key(task.id, "diff.patch"), 1 << 30)
        .await
        .unwrap();
    let diff = String::from_utf8(diff).unwrap();
    assert!(diff.contains("+    return a + b"), "{diff}");
    // The model saw the run's key (quotes, spaces and `$` kept), which reached the agent
    // through the secrets file, never the container's config.
    let requests = model.requests();
    assert!(!requests.is_empty());
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    let first_request_ms = requests[0].received_at_ms as i64 - submitted_at_ms;
    #[allow(clippy::print_stderr)]
    {
        eprintln!("container runner: submit to first model request {first_request_ms} ms");
    }
    // The finished run is removed: no container, no files.
    let name = done.runner_ref.clone().unwrap();
    assert!(!engine.exists(&name), "the finished run's container stayed");
    assert!(!data.path().join("containers").join(&name).exists());
}
