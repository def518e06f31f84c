//! Load generator for `scripts/bench-cluster`: the whole service on one profile, with the
//! real `agent-rs` and a trivial scripted model (one answer per task, no tool call).
//!
//! It starts the scripted model in this process and an `api` process (`all`: API,
//! worker, reconciler) on a config of its own, submits TASKS zip tasks at once (16 in
//! flight), and reports:
//! - end-to-end throughput: tasks per second from the first submission to the last
//!   terminal status;
//! - submit-to-agent-start latency, p50 and p99: from a task's submission to its
//!   agent's first model request (the model server stamps each request on arrival);
//! - status reads per second (`GET /api/v1/tasks/{id}`, closed loop over CONNECTIONS);
//!   on the cluster profile also through a second process (`--role api`) whose Redis
//!   is down (its URL names a port nothing listens on), to show reads keep their speed.
//!
//! `bench_cluster API_BIN AGENT_BIN embedded|cluster [TASKS] [READ_SECONDS] [CONNECTIONS]`
//! The cluster profile reads the services from the environment (`scripts/services`
//! writes them): `BENCH_MYSQL_URL` (a database of the bench's own, its password in the
//! URL), `AGENT_TEST_REDIS_URL`, `AGENT_TEST_KAFKA_BROKERS`, `AGENT_TEST_S3_ENDPOINT`,
//! `AGENT_TEST_S3_ACCESS_KEY`, `AGENT_TEST_S3_SECRET_KEY`, `AGENT_TEST_S3_BUCKET`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scripted_model::{Script, ScriptedServer};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

const TOKEN: &str = "bench-token";
const IN_FLIGHT: usize = 16;
const PATIENCE: Duration = Duration::from_secs(600);

fn env(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tiny_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("README.md", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"# bench\n").unwrap();
    zip.finish().unwrap().into_inner()
}

/// The config for `profile` in `dir`; `redis_url` replaces the cache's address.
fn config(dir: &Path, profile: &str, run: &str, redis_url: Option<&str>) -> PathBuf {
    let mut text = String::from(
        "[api]\nmax_live_tasks_per_owner = 0\nmax_concurrent_uploads = 0\n\
         [orchestrator.worker]\nconcurrency = 8\n",
    );
    if profile == "cluster" {
        let mut url = url::Url::parse(&env("BENCH_MYSQL_URL", "")).expect("BENCH_MYSQL_URL");
        let password = url.password().unwrap_or_default().to_string();
        url.set_password(None).unwrap();
        let password_file = dir.join("mysql-password");
        std::fs::write(&password_file, password).unwrap();
        let redis = redis_url.map_or_else(
            || env("AGENT_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
            str::to_string,
        );
        let bucket = env("AGENT_TEST_S3_BUCKET", "codex-test");
        text.push_str(&format!(
            "[orchestrator.store]\nbackend = \"mysql\"\n\
             [orchestrator.store.mysql]\nurl = \"{url}\"\npassword_file = \"{}\"\n\
             [orchestrator.cache]\nbackend = \"redis\"\n\
             [orchestrator.cache.redis]\nurl = \"{redis}\"\nkey_prefix = \"bench-{run}\"\n\
             [orchestrator.queue]\nbackend = \"kafka\"\n\
             [orchestrator.queue.kafka]\nbrokers = \"{}\"\ntasks_topic = \"bench-tasks-{run}\"\n\
             results_topic = \"bench-results-{run}\"\ndead_letter_topic = \"bench-dead-{run}\"\n\
             group_id = \"bench-group-{run}\"\npartitions = 2\nsession_timeout_ms = 6000\n\
             [orchestrator.blob]\nbackend = \"s3\"\n\
             [orchestrator.blob.s3]\nendpoint = \"{}\"\naddressing = \"path\"\n\
             code_bucket = \"{bucket}\"\nlogs_bucket = \"{bucket}-logs\"\ncreate_buckets = true\n",
            password_file.display(),
            env("AGENT_TEST_KAFKA_BROKERS", "127.0.0.1:9092"),
            env("AGENT_TEST_S3_ENDPOINT", "http://127.0.0.1:9100"),
        ));
    }
    let path = dir.join(format!(
        "config-{}.toml",
        redis_url.map_or("main", |_| "down")
    ));
    std::fs::write(&path, text).unwrap();
    path
}

struct Api {
    child: Child,
    base: String,
}

impl Api {
    async fn start(
        bins: &(String, String),
        home: &Path,
        config: &Path,
        model: &ScriptedServer,
        role: &str,
    ) -> Self {
        let port = free_port();
        let data = home.join(format!("data-{role}"));
        let child = Command::new(&bins.0)
            .args(["--role", role, "--listen", &format!("127.0.0.1:{port}")])
            .arg("--agent-bin")
            .arg(&bins.1)
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(config)
            .env("API_DEV_TOKEN", TOKEN)
            .env("OPENAI_BASE_URL", model.base_url())
            .env("AGENT_MODEL", "scripted")
            .env(
                "AWS_ACCESS_KEY_ID",
                env("AGENT_TEST_S3_ACCESS_KEY", "agent-dev"),
            )
            .env(
                "AWS_SECRET_ACCESS_KEY",
                env("AGENT_TEST_S3_SECRET_KEY", "agent-dev-secret-only"),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(home.join(format!("{role}.log"))).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "api did not start; see {role}.log"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, base }
    }
}

/// Submits `tasks` zip tasks; returns each one's id and submission time (epoch ms).
async fn submit_all(http: &reqwest::Client, base: &str, tasks: usize) -> Vec<(String, u64)> {
    let zip = Arc::new(tiny_zip());
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut handles = Vec::new();
    for n in 0..tasks {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (http, base, zip) = (http.clone(), base.to_string(), zip.clone());
        handles.push(tokio::spawn(async move {
            let form = reqwest::multipart::Form::new()
                .text("description", format!("bench task {n}"))
                .part(
                    "zip_file",
                    reqwest::multipart::Part::bytes(zip.to_vec()).file_name("repo.zip"),
                );
            let sent = now_ms();
            let response = http
                .post(format!("{base}/api/v1/tasks"))
                .bearer_auth(TOKEN)
                .multipart(form)
                .send()
                .await
                .unwrap();
            drop(permit);
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
            let body: serde_json::Value = response.json().await.unwrap();
            (body["id"].as_str().unwrap().to_string(), sent)
        }));
    }
    let mut submitted = Vec::new();
    for handle in handles {
        submitted.push(handle.await.unwrap());
    }
    submitted
}

/// Waits until every task is terminal; returns how many completed.
async fn wait_terminal(http: &reqwest::Client, base: &str, ids: &[String]) -> usize {
    let started = Instant::now();
    let mut open: Vec<&String> = ids.iter().collect();
    let mut completed = 0;
    while !open.is_empty() {
        assert!(
            started.elapsed() < PATIENCE,
            "{} tasks never finished",
            open.len()
        );
        let mut still = Vec::new();
        for id in open {
            let task: serde_json::Value = http
                .get(format!("{base}/api/v1/tasks/{id}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match task["status"].as_str().unwrap_or_default() {
                "COMPLETED" => completed += 1,
                "FAILED" | "CANCELLED" => {}
                _ => still.push(id),
            }
        }
        open = still;
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    completed
}

/// Status reads over `connections` for `seconds`: (reads/s, errors).
async fn read_load(base: &str, ids: &[String], seconds: u64, connections: usize) -> (f64, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections * 2)
        .build()
        .unwrap();
    let ids = Arc::new(ids.to_vec());
    let (ok, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (client, base, ids) = (client.clone(), base.to_string(), ids.clone());
        let (ok, errors) = (ok.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            while Instant::now() < deadline {
                let id = &ids[n % ids.len()];
                n += connections;
                let good = client
                    .get(format!("{base}/api/v1/tasks/{id}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                let counter = if good { &ok } else { &errors };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let rate = ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (rate, errors.load(Ordering::Relaxed))
}

/// Each task's first model request (epoch ms), found by its description.
fn agent_starts(model: &ScriptedServer) -> HashMap<usize, u64> {
    let mut starts = HashMap::new();
    for request in model.requests() {
        let text = request.body["messages"].to_string();
        let Some(at) = text.find("bench task ") else {
            continue;
        };
        let digits: String = text[at + 11..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(n) = digits.parse() {
            starts.entry(n).or_insert(request.received_at_ms);
        }
    }
    starts
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let bins = (args[1].clone(), args[2].clone());
    let profile = args[3].clone();
    assert!(
        profile == "embedded" || profile == "cluster",
        "profile: embedded|cluster"
    );
    let tasks: usize = args.get(4).map_or(200, |v| v.parse().unwrap());
    let read_seconds: u64 = args.get(5).map_or(5, |v| v.parse().unwrap());
    let connections: usize = args.get(6).map_or(16, |v| v.parse().unwrap());

    let steps: Vec<_> = (0..tasks + 50)
        .map(|_| serde_json::json!({"type": "message", "content": "Nothing to change."}))
        .collect();
    let script = serde_json::json!({"model": "scripted", "steps": steps}).to_string();
    let model = ScriptedServer::start(Script::from_json(&script).unwrap())
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let main_config = config(home.path(), &profile, &run, None);
    let mut api = Api::start(&bins, home.path(), &main_config, &model, "all").await;
    let http = reqwest::Client::new();

    let started = Instant::now();
    let submitted = submit_all(&http, &api.base, tasks).await;
    let submit_secs = started.elapsed().as_secs_f64();
    let ids: Vec<String> = submitted.iter().map(|(id, _)| id.clone()).collect();
    let completed = wait_terminal(&http, &api.base, &ids).await;
    let total_secs = started.elapsed().as_secs_f64();

    let starts = agent_starts(&model);
    let mut latencies: Vec<u64> = submitted
        .iter()
        .enumerate()
        .filter_map(|(n, (_, sent))| Some(starts.get(&n)?.saturating_sub(*sent)))
        .collect();
    latencies.sort_unstable();
    println!(
        "{profile}: {tasks} tasks ({completed} completed) in {total_secs:.1} s = {:.1} tasks/s \
         (submissions took {submit_secs:.1} s)",
        tasks as f64 / total_secs
    );
    println!(
        "{profile}: submit to agent start ({} seen): p50 {} ms, p99 {} ms, max {} ms",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default()
    );
    let (rate, errors) = read_load(&api.base, &ids, read_seconds, connections).await;
    println!(
        "{profile}: status reads, cache up: {rate:.0}/s over {connections} connections ({errors} errors)"
    );
    if profile == "cluster" {
        let dead = format!("redis://127.0.0.1:{}", free_port());
        let down_config = config(home.path(), &profile, &run, Some(&dead));
        let mut down = Api::start(&bins, home.path(), &down_config, &model, "api").await;
        let (rate, errors) = read_load(&down.base, &ids, read_seconds, connections).await;
        println!(
            "{profile}: status reads, cache down: {rate:.0}/s over {connections} connections ({errors} errors)"
        );
        let _ = down.child.kill().await;
    }
    let _ = api.child.kill().await;
}
