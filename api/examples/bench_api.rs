//! Load generator for `scripts/bench-api`: task creation at a fixed rate (open loop, so a
//! slow server cannot slow the clock and hide its latency), then status reads as fast as
//! a fixed number of connections allow.
//!
//! `bench_api BASE_URL TOKEN [CREATE_RATE] [SECONDS] [READ_CONNECTIONS]`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut latencies: Vec<Duration>, errors: u64, elapsed: Duration) {
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: {} ok, {errors} errors in {:.1}s = {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .expect("BASE_URL")
        .trim_end_matches('/')
        .to_string();
    let token = args.get(2).expect("TOKEN").clone();
    let rate: u64 = args.get(3).map_or(200, |v| v.parse().unwrap());
    let seconds: u64 = args.get(4).map_or(10, |v| v.parse().unwrap());
    let connections: usize = args.get(5).map_or(32, |v| v.parse().unwrap());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections * 2)
        .build()
        .unwrap();

    // Warm up: connections, caches, the token lookup.
    for _ in 0..20 {
        let _ = client.get(format!("{base}/healthz")).send().await;
    }

    // 1. Creates at a fixed rate. Latency counts from the scheduled send time.
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let total = rate * seconds;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let started = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = started + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (latencies, errors, ids) = (latencies.clone(), errors.clone(), ids.clone());
        handles.push(tokio::spawn(async move {
            let response = client
                .post(format!("{base}/api/v1/tasks"))
                .bearer_auth(&token)
                .json(&serde_json::json!({
                    "git_url": "https://140.82.112.3/org/repo.git",
                    "description": format!("bench task {n}"),
                }))
                .send()
                .await;
            let took = due.elapsed();
            match response {
                Ok(r) if r.status() == 201 => {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if let Some(id) = body["id"].as_str() {
                        ids.lock().await.push(id.to_string());
                    }
                    latencies.lock().await.push(took);
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let elapsed = started.elapsed();
    let created = std::mem::take(&mut *latencies.lock().await);
    report(
        &format!("create at {rate}/s"),
        created,
        errors.load(Ordering::Relaxed),
        elapsed,
    );

    // 2. Status reads, closed loop over `connections` workers.
    let ids = Arc::new(std::mem::take(&mut *ids.lock().await));
    assert!(!ids.is_empty(), "no task was created");
    let read_errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (client, base, token, ids) = (client.clone(), base.clone(), token.clone(), ids.clone());
        let read_errors = read_errors.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while Instant::now() < deadline {
                let id = &ids[n % ids.len()];
                n += connections;
                let sent = Instant::now();
                let ok = client
                    .get(format!("{base}/api/v1/tasks/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                if ok {
                    latencies.push(sent.elapsed());
                } else {
                    read_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut reads = Vec::new();
    for worker in workers {
        reads.extend(worker.await.unwrap());
    }
    report(
        &format!("status reads over {connections} connections"),
        reads,
        read_errors.load(Ordering::Relaxed),
        started.elapsed(),
    );
}
