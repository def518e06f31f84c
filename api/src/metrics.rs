//! Prometheus metrics, hand-rolled: request counts and latency by route and status, tasks
//! created, live tasks by status, the queue's depth, and the orchestrator's own counters
//! ([`orchestrator::metrics`]).
//!
//! A dozen series do not justify a metrics framework; the text format is simple and is
//! what every scraper reads. Routes are labelled by their pattern
//! (`/api/v1/tasks/{id}`), never the concrete path, so the series count stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use orchestrator::{TaskStatus, TaskStore};

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

/// Live tasks by status, and when they were counted.
type LiveCount = Option<(Instant, Vec<(TaskStatus, u64)>)>;

/// How long one count of live tasks serves scrapes.
const LIVE_COUNT_TTL: Duration = Duration::from_secs(15);

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, Histogram>>,
    tasks_created: AtomicU64,
    /// The last count of live tasks by status, and when it was taken.
    live: tokio::sync::Mutex<LiveCount>,
}

impl Metrics {
    pub fn task_created(&self) {
        self.tasks_created.fetch_add(1, Ordering::Relaxed);
    }

    /// Live tasks by status: a count at most [`LIVE_COUNT_TTL`] old (one grouped query
    /// of the unfinished rows when it is older). Concurrent scrapes share one query; a
    /// failed count is logged and reported as none.
    pub async fn live_tasks(&self, store: &dyn TaskStore) -> Vec<(TaskStatus, u64)> {
        let mut live = self.live.lock().await;
        if let Some((at, counts)) = &*live
            && at.elapsed() < LIVE_COUNT_TTL
        {
            return counts.clone();
        }
        match store.count_live().await {
            Ok(counts) => {
                *live = Some((Instant::now(), counts.clone()));
                counts
            }
            Err(err) => {
                tracing::warn!(error = %err, "counting live tasks for /metrics failed");
                Vec::new()
            }
        }
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

    /// The Prometheus text exposition, with `live_tasks` as the per-status gauge and
    /// `queue_depth` where this process can tell it.
    pub fn render(&self, live_tasks: &[(TaskStatus, u64)], queue_depth: Option<usize>) -> String {
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
            let _ = writeln!(out, "api_tasks{{status=\"{}\"}} {count}", status.as_str());
        }
        if let Some(depth) = queue_depth {
            out.push_str("# HELP api_queue_depth Messages waiting on this process's queue.\n");
            out.push_str("# TYPE api_queue_depth gauge\n");
            let _ = writeln!(out, "api_queue_depth {depth}");
        }
        orchestrator::metrics::global().render(&mut out);
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
