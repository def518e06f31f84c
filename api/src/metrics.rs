//! Prometheus metrics, hand-rolled: request counts and latency by route and status, tasks
//! created, live tasks by status.
//!
//! A dozen series do not justify a metrics framework; the text format is simple and is
//! what every scraper reads. Routes are labelled by their pattern
//! (`/api/v1/tasks/{id}`), never the concrete path, so the series count stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::SharedState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_secs: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, Histogram>>,
    tasks_created: AtomicU64,
}

impl Metrics {
    pub fn task_created(&self) {
        self.tasks_created.fetch_add(1, Ordering::Relaxed);
    }

    fn observe(&self, key: RequestKey, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let hist = requests.entry(key).or_default();
        hist.count += 1;
        hist.sum_secs += secs;
        for (bucket, bound) in hist.buckets.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
    }

    /// The Prometheus text exposition, with `live_tasks` as the per-status gauge.
    pub fn render(&self, live_tasks: &[(&str, u64)]) -> String {
        let mut out = String::new();
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.push_str("# HELP api_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE api_requests_total counter\n");
        for (key, hist) in &requests {
            let _ = writeln!(out, "api_requests_total{{{}}} {}", labels(key), hist.count);
        }
        out.push_str("# HELP api_request_duration_seconds Time to produce the response.\n");
        out.push_str("# TYPE api_request_duration_seconds histogram\n");
        for (key, hist) in &requests {
            let labels = labels(key);
            for (count, bound) in hist.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "api_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "api_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                hist.count
            );
            let _ = writeln!(
                out,
                "api_request_duration_seconds_sum{{{labels}}} {}",
                hist.sum_secs
            );
            let _ = writeln!(
                out,
                "api_request_duration_seconds_count{{{labels}}} {}",
                hist.count
            );
        }
        out.push_str("# HELP api_tasks_created_total Tasks created through this process.\n");
        out.push_str("# TYPE api_tasks_created_total counter\n");
        let _ = writeln!(
            out,
            "api_tasks_created_total {}",
            self.tasks_created.load(Ordering::Relaxed)
        );
        out.push_str("# HELP api_tasks Live (not yet finished) tasks by status.\n");
        out.push_str("# TYPE api_tasks gauge\n");
        for (status, count) in live_tasks {
            let _ = writeln!(out, "api_tasks{{status=\"{status}\"}} {count}");
        }
        out
    }
}

fn labels(key: &RequestKey) -> String {
    format!(
        "method=\"{}\",route=\"{}\",status=\"{}\"",
        key.method,
        key.route.replace('\\', "\\\\").replace('"', "\\\""),
        key.status
    )
}

/// Middleware recording each request under its route pattern.
pub async fn record(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    state.metrics.observe(
        RequestKey {
            method,
            route,
            status: response.status().as_u16(),
        },
        started.elapsed(),
    );
    response
}
