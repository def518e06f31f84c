//! The binary's roles: `worker` serves only health, readiness and metrics; `api` serves
//! the public routes and never runs an agent; an `api` and a `worker` process on one data
//! folder (embedded SQLite in WAL mode, the store's outbox as the queue between them)
//! run a task to its end, once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::time::Duration;

use e2e_support::*;
use orchestrator::TaskStore;
use orchestrator::store::Due;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_process_serves_health_readiness_and_metrics_only() {
    let model = scripted_model(json!([])).await;
    let home = Home::new("");
    let worker = Api::start_with(
        &home,
        "127.0.0.1:0",
        &model,
        &["--role", "worker", "--public-url", "http://127.0.0.1:9"],
    )
    .await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = worker.http.get(worker.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}\n{}", worker.log());
    }
    for path in [
        "/api/v1/tasks",
        "/api/v1/openapi.json",
        "/api/task/x/status",
        "/blobs/tasks/x",
        "/",
    ] {
        let response = worker
            .http
            .get(worker.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path} must not be served");
    }
    let created = worker
        .submit_json(&json!({"git_url": "https://140.82.112.3/o/r.git", "description": "x"}))
        .await;
    assert_eq!(created.status(), 404);
    assert!(worker.log().contains("worker started"), "{}", worker.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_process_without_the_api_address_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["--role", "worker", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("API_PUBLIC_URL")
        .env_remove("API_CONFIG")
        .env_remove("API_ROLE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--public-url"), "{stderr}");
}

/// An allow-list every agent would refuse (each task exiting 2) stops the server instead,
/// naming the entry.
#[test]
fn a_server_with_an_unusable_sandbox_host_refuses_to_start_naming_it() {
    for (toml_text, entry) in [
        (
            "[orchestrator.sandbox]\nallow_hosts = [\"pypi.org\", \"mirror:http\"]\n",
            "`mirror:http`",
        ),
        (
            "[orchestrator.sandbox]\nallow_hosts = [\"pypi.org\"]\n\
             [orchestrator.sandbox.host_addresses]\n\"pypi.org:443\" = \"10.0.0.7\"\n",
            "`pypi.org:443`",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, toml_text).unwrap();
        let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_api"))
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("API_CONFIG")
            .env_remove("API_ROLE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that starts keeps running: give it the time a refusal takes, then stop it.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while server.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let refused = server.try_wait().unwrap().is_some();
        if !refused {
            server.kill().unwrap();
        }
        let output = server.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(refused, "started with {toml_text}: {stderr}");
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains("[orchestrator.sandbox]"), "{stderr}");
        assert!(stderr.contains(entry), "{stderr}");
        assert!(
            !dir.path().join("data").exists(),
            "the refused server made its data folder"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_process_stores_tasks_for_the_workers_and_runs_no_agent() {
    let model = scripted_model(json!(fix_add_steps())).await;
    // The role from the config file.
    let home = Home::new("role = \"api\"\n");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let id = api
        .created_id(
            api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), "fix add")
                .await,
        )
        .await;

    // Longer than a worker takes to claim a task here; nothing moves it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(api.task(&id).await["status"], "QUEUED", "{}", api.log());
    assert!(model.requests().is_empty(), "an agent ran");
    assert!(!api.log().contains("worker started"), "{}", api.log());
    // The task waits in the outbox, where worker processes read it.
    let store = api::embedded::open_store(&home.data()).await.unwrap();
    let waiting = store
        .due(
            Due::Outbox {
                older_than: Duration::ZERO,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].to_string(), id);
    store.close().await;

    // The public routes are all there.
    for path in ["/api/v1/openapi.json", "/readyz"] {
        let response = api.http.get(api.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_and_worker_processes_on_one_data_folder_run_a_task_once() {
    let model = scripted_model(json!(fix_add_steps())).await;
    let home = Home::new("");
    let api = Api::start_with(&home, "127.0.0.1:0", &model, &["--role", "api"]).await;
    let worker = Api::start_with(
        &home,
        "127.0.0.1:0",
        &model,
        &["--role", "worker", "--public-url", &api.base],
    )
    .await;

    let id = api
        .created_id(
            api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), "fix add")
                .await,
        )
        .await;
    let task = api
        .wait_for_status(&id, |status| {
            matches!(status, "COMPLETED" | "FAILED" | "CANCELLED")
        })
        .await;
    assert_eq!(
        task["status"],
        "COMPLETED",
        "{task}\napi log:\n{}\nworker log:\n{}",
        api.log(),
        worker.log()
    );
    assert_eq!(task["attempt"], 1, "{task}");
    // One agent run: the model was asked twice (the edit, then the final message).
    assert_eq!(model.requests().len(), 2);
    let diff = api.artifact(&id, "diff.patch").await;
    assert!(diff.contains("+    return a + b"), "{diff}");
    assert!(
        worker.log().contains(&id),
        "the worker ran it:\n{}",
        worker.log()
    );

    // The worker's metrics tell what it did; the API process runs no queue.
    let metrics = worker
        .http
        .get(worker.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"orchestrator_tasks_finished_total{status="COMPLETED",reason="completed"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"orchestrator_phase_seconds_count{phase="prepare"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("api_queue_depth 0"), "{metrics}");
    let api_metrics = api
        .http
        .get(api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!api_metrics.contains("api_queue_depth"), "{api_metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_fails_with_the_reason_when_the_data_disk_is_short_of_space() {
    let model = scripted_model(json!([])).await;
    let home = Home::new("role = \"api\"\n[api]\nmin_free_disk_mb = 1000000000000\n");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let response = api.http.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let reason = body["error"]["message"].as_str().unwrap();
    assert!(reason.contains("MiB free"), "{reason}");
    // Liveness is another question: the process is up.
    let health = api.http.get(api.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// The config of `deploy/compose`: agents as containers on an engine whose socket only the
/// worker mounts. Here no engine answers at that path.
const CONTAINER_RUNNER_WITHOUT_ENGINE: &str = "[orchestrator.runner]\nkind = \"container\"\n\n\
     [orchestrator.runner.container]\nsocket = \"unix:///nonexistent/engine.sock\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn an_api_process_needs_no_runner_backend_and_a_worker_refuses_to_start_without_one() {
    let model = scripted_model(json!([])).await;
    let home = Home::new(&format!(
        "role = \"api\"\n{CONTAINER_RUNNER_WITHOUT_ENGINE}"
    ));
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let response = api.http.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", api.log());
    let id = api
        .created_id(
            api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), "fix add")
                .await,
        )
        .await;
    assert_eq!(api.task(&id).await["status"], "QUEUED", "{}", api.log());
    assert!(!api.log().contains("engine.sock"), "{}", api.log());

    // A worker on the same config needs the engine: it says so and exits.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONTAINER_RUNNER_WITHOUT_ENGINE).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["--role", "worker", "--listen", "127.0.0.1:0"])
        .args(["--public-url", "http://127.0.0.1:9", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("API_CONFIG")
        .env_remove("API_ROLE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the runner"), "{stderr}");
    assert!(stderr.contains("/nonexistent/engine.sock"), "{stderr}");
}
