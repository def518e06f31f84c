//! The worker with the real `agent-rs job` and the scripted model server: a zip task in,
//! a `diff.patch` out, every byte through the local blob store's signed URLs served over
//! real HTTP (the route the API serves, reduced to what the agent uses).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use orchestrator::blob::{LocalBlobStore, SignedQuery, generate_signing_key};
use orchestrator::worker::output_key;
use orchestrator::{BlobStore, Services, TaskLimits, TaskStatus};
use scripted_model::{Script, ScriptedServer};
use worker_support::*;

/// Builds `agent-rs` once, into the target folder this test runs from
/// (`target/debug/deps/<test>` -> `target/debug/agent-rs`).
fn agent_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let target_dir = profile_dir.parent().unwrap();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let status = std::process::Command::new(cargo)
                .args(["build", "-p", "agent-rs", "--bin", "agent-rs"])
                .env("CARGO_TARGET_DIR", target_dir)
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
                .unwrap();
            assert!(status.success(), "building agent-rs failed");
            let binary = profile_dir.join("agent-rs");
            assert!(binary.is_file(), "{} missing", binary.display());
            binary
        })
        .clone()
}

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
async fn the_real_agent_fixes_a_zip_task_and_its_diff_lands_in_the_blob_store() {
    let agent = tokio::task::spawn_blocking(agent_binary).await.unwrap();
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
    let mut config = test_config(&data, |c| {
        c.model.base_url = Some(model.base_url());
        c.model.model = Some("scripted".to_string());
    });
    config.agent_bin = agent;
    let (services, parts) = Services::embedded(config, &base_url, generate_signing_key().unwrap())
        .await
        .unwrap();
    let app = Router::new()
        .route("/blobs/{*key}", get(get_blob).put(put_blob))
        .with_state(parts.blobs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let harness = Harness::from_parts(services, parts);
    let (_shutdown, _worker) = harness.start_worker();

    let task = harness
        .submit_zip(
            &[("calc.py", "def add(a, b):\n    return a - b\n")],
            TaskLimits::default(),
        )
        .await;
    let events = harness.events_until_closed(task.id).await;

    let done = harness.get(task.id).await;
    let log = std::fs::read_to_string(data.path().join(format!("runs/{}.stderr.log", task.id)))
        .unwrap_or_default();
    assert_eq!(
        done.status,
        TaskStatus::Completed,
        "{done:?}\nagent log:\n{log}"
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
    assert_eq!(kinds.last(), Some(&"status"));

    let diff = harness
        .services
        .blobs
        .get_bytes(&output_key(task.id, "diff.patch"), 1 << 30)
        .await
        .unwrap();
    let diff = String::from_utf8(diff).unwrap();
    assert!(diff.contains("-    return a - b"), "{diff}");
    assert!(diff.contains("+    return a + b"), "{diff}");
    for name in ["trajectory.jsonl", "result.json", "agent.log", "prompt.txt"] {
        assert!(
            harness
                .services
                .blobs
                .exists(&output_key(task.id, name))
                .await
                .unwrap(),
            "{name} was not uploaded"
        );
    }
}
