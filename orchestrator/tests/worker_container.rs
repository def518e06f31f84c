//! The worker with the container runner on real Podman: a zip task in, a `diff.patch`
//! out, with the agent image's `agent-rs` injected into an environment image that has
//! none, no network but the run's egress proxy, and every byte through the local blob
//! store's signed URLs served over real HTTP. The agent's own commands find none of the
//! run's secrets, which the agent itself got.

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
use orchestrator::{BlobStore, Services, Task, TaskLimits, TaskStatus};
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

/// One task run to its end by the worker with the container runner, the model answering
/// with `steps`, the model's key `api_key`, in the environment image `image`.
struct Ran {
    engine: Engine,
    model: ScriptedServer,
    data: DataDir,
    harness: Harness,
    done: Task,
    events: Vec<serde_json::Value>,
    submitted_at_ms: i64,
}

async fn run_task(
    steps: serde_json::Value,
    api_key: &str,
    files: &[(&str, &str)],
    image: &str,
) -> Ran {
    let engine = Engine::start();
    let model = ScriptedServer::start(
        Script::from_json(&serde_json::json!({"model": "scripted", "steps": steps}).to_string())
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
        c.model.api_key = Some(secrecy::SecretString::from(api_key));
    });
    let (mut services, parts) =
        Services::embedded(config, &base_url, generate_signing_key().unwrap())
            .await
            .unwrap();
    let mut settings = engine.settings(&data.path().join("containers"));
    settings.environment_image = image.to_string();
    let runner =
        orchestrator::runner::ContainerRunner::new(settings, data.path().join("containers"))
            .unwrap();
    runner.ping().await.unwrap();
    services.runner = Arc::new(runner);
    let app = Router::new()
        .route("/blobs/{*key}", get(get_blob).put(put_blob))
        .with_state(parts.blobs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let harness = Harness::from_parts(services, parts);
    let (_shutdown, _worker) = harness.start_worker();

    let submitted_at_ms = orchestrator::task::now_ms();
    let task = harness.submit_zip(files, TaskLimits::default()).await;
    let events = harness.events_until_closed(task.id).await;
    let done = harness.get(task.id).await;
    Ran {
        engine,
        model,
        data,
        harness,
        done,
        events,
        submitted_at_ms,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_runs_a_task_in_a_container_to_a_diff() {
    let Ran {
        engine,
        model,
        data,
        harness,
        done,
        events,
        submitted_at_ms,
    } = run_task(
        serde_json::json!([
            {"type": "tool_calls", "calls": [
                {"name": "edit_file_content", "arguments": {
                    "file_path": "calc.py",
                    "old_text": "return a - b",
                    "new_text": "return a + b"
                }}
            ]},
            {"type": "message", "content": "Fixed `add`."}
        ]),
        API_KEY,
        &[("calc.py", "def add(a, b):\n    return a - b\n")],
        container_support::ENV_IMAGE,
    )
    .await;
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
        .get_bytes(&output_key(done.id, "diff.patch"), 1 << 30)
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

/// The model's key, with a mark the hunt below looks for.
const CANARY_KEY: &str = "sk-canary-7f3a 'q' $HOME";

/// What the agent's own command finds of the run's secrets: `LEAK:` lines for files
/// holding the key or a copy of the secrets file (`NAME='...'` lines), the mount's
/// files, `WROTE` if it could write to the secrets folder, then `hunt-over`. The
/// agent's binary (a read-only volume) is left out: its text names the variables. The
/// patterns are put together at run time: the trajectory holds this command's text.
const HUNT: &str = r#"mark=canary; mark="$mark-7f3a"; line=OPENAI_API_KEY; line="$line='"
cat /run/agent-rs-secrets/env /run/agent-rs-secrets.env 2>&1
ls -la /run/agent-rs-secrets 2>&1
echo "job-environ:$(cat /proc/1/environ 2>/dev/null | tr '\0' '\n' | grep -c OPENAI_API_KEY)"
echo "own-environ:$(env | grep -c OPENAI_API_KEY)"
touch /run/agent-rs-secrets/x 2>/dev/null && echo WROTE
find / \( -path /proc -o -path /sys -o -path /dev -o -path /opt/agent-rs \) -prune -o -name '*secret*' -print 2>&1
find / \( -path /proc -o -path /sys -o -path /dev -o -path /opt/agent-rs \) -prune -o -type f -print 2>/dev/null |
  while read -r f; do grep -q -e "$mark" -e "$line" "$f" 2>/dev/null && echo "LEAK:$f"; done
echo hunt-over"#;

/// The agent runs a command that hunts for the run's secrets (the mount, the whole file
/// system, the job's `/proc/1/environ`, its environment) and finds none, while the agent
/// itself got its key: the model saw it on the request.
#[tokio::test(flavor = "multi_thread")]
async fn the_agents_commands_find_no_secret_while_the_agent_has_its_key() {
    container_support::ensure_bash_image();
    let ran = run_task(
        serde_json::json!([
            {"type": "tool_calls", "calls": [
                {"name": "run_shell_command", "arguments": {"command_string": HUNT}}
            ]},
            {"type": "message", "content": "looked around"}
        ]),
        CANARY_KEY,
        &[("README", "nothing here\n")],
        container_support::BASH_IMAGE,
    )
    .await;
    assert_eq!(
        ran.done.status,
        TaskStatus::Completed,
        "{:?}\nevents: {:?}",
        ran.done,
        ran.events
    );
    let requests = ran.model.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in &requests {
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {CANARY_KEY}").as_str())
        );
    }
    // What the command printed, as the model got it back.
    let found: String = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["role"] == "tool")
        .filter_map(|message| message["content"].as_str())
        .collect();
    container_support::assert_secrets_hunt_found_nothing(&found, &["canary", "OPENAI_API_KEY="]);
    // The job's `/proc/1/environ` (unreadable: it is not dumpable) and the command's
    // own environment (scrubbed) hold no key either.
    assert!(found.contains("job-environ:0"), "{found}");
    assert!(found.contains("own-environ:0"), "{found}");
    let name = ran.done.runner_ref.clone().unwrap();
    assert!(!ran.engine.exists(&name));
    assert!(!ran.data.path().join("containers").join(&name).exists());
    drop(ran.harness);
}
