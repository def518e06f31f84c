//! The orchestrator's own metrics: what the worker and the reconciler did, counted in
//! this process, rendered in the Prometheus text format by whoever serves `/metrics`.
//!
//! One registry per process ([`global`]), as Prometheus clients keep theirs: the worker
//! and the reconciler count where things happen without a handle threaded through every
//! call. Names and label values are `&'static str`, so the set of series is fixed by the
//! code and cannot grow with the data (no task ids, no messages, no URLs). Nothing here
//! reads the store: a scrape costs a lock and a string.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Upper bounds of the phase-duration buckets, in seconds (a clone to a long run).
const BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0];

/// Label names and values, all from the code: `&'static str` keeps them bounded.
pub type Labels<'a> = &'a [(&'static str, &'static str)];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    name: &'static str,
    labels: Vec<(&'static str, &'static str)>,
}

impl Key {
    fn new(name: &'static str, labels: Labels<'_>) -> Self {
        Self {
            name,
            labels: labels.to_vec(),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters and histograms of one process.
#[derive(Debug, Default)]
pub struct Registry {
    counters: Mutex<BTreeMap<Key, u64>>,
    histograms: Mutex<BTreeMap<Key, Histogram>>,
}

/// The process's registry.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// What each metric means, for `# HELP` (and its type).
const METRICS: [(&str, &str, &str); 11] = [
    (
        "orchestrator_tasks_finished_total",
        "counter",
        "Tasks this process brought to a terminal status, by status and reason.",
    ),
    (
        "orchestrator_phase_seconds",
        "histogram",
        "Time a task spent in each phase this process carried it through.",
    ),
    (
        "orchestrator_reconciler_actions_total",
        "counter",
        "Steps the reconciler took, by kind.",
    ),
    (
        "orchestrator_reconciler_passes_total",
        "counter",
        "Reconciler passes, by whether every repair in them succeeded.",
    ),
    (
        "orchestrator_runs_lost_total",
        "counter",
        "Runs that vanished without an exit record (their task failed as lost).",
    ),
    (
        "orchestrator_prepare_failures_total",
        "counter",
        "Workspace preparations that failed, by kind (clone, unzip, store, timeout).",
    ),
    (
        "orchestrator_launch_failures_total",
        "counter",
        "Agent launches that failed after their retries.",
    ),
    (
        "orchestrator_cache_errors_total",
        "counter",
        "Status cache calls that failed (the store stayed the truth).",
    ),
    (
        "orchestrator_blob_errors_total",
        "counter",
        "Blob store calls that failed, by what was being done.",
    ),
    (
        "orchestrator_worker_claims_total",
        "counter",
        "Queue deliveries the worker turned into a held task.",
    ),
    (
        "orchestrator_rate_limit_total",
        "counter",
        "Submissions checked against their owner's rate limit, by outcome (allowed, \
         limited, unchecked: the cache could not count and the submission went through).",
    ),
];

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// Adds one to the counter `name` with `labels`.
    pub fn inc(&self, name: &'static str, labels: Labels<'_>) {
        *lock(&self.counters)
            .entry(Key::new(name, labels))
            .or_default() += 1;
    }

    /// Records `elapsed` in the histogram `name` with `labels`.
    pub fn observe(&self, name: &'static str, labels: Labels<'_>, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut histograms = lock(&self.histograms);
        let hist = histograms.entry(Key::new(name, labels)).or_default();
        hist.count += 1;
        hist.sum += secs;
        for (bucket, bound) in hist.buckets.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
    }

    /// The counter's value (0 if never counted).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        lock(&self.counters)
            .iter()
            .find(|(key, _)| key.name == name && key.labels.as_slice() == labels)
            .map(|(_, n)| *n)
            .unwrap_or_default()
    }

    /// Appends every metric in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let counters = lock(&self.counters).clone();
        let histograms = lock(&self.histograms).clone();
        for (name, kind, help) in METRICS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (key, value) in counters.iter().filter(|(key, _)| key.name == name) {
                let _ = writeln!(out, "{name}{} {value}", braces(&key.labels, None));
            }
            for (key, hist) in histograms.iter().filter(|(key, _)| key.name == name) {
                for (count, bound) in hist.buckets.iter().zip(BUCKETS) {
                    let le = bound.to_string();
                    let labels = braces(&key.labels, Some(&le));
                    let _ = writeln!(out, "{name}_bucket{labels} {count}");
                }
                let inf = braces(&key.labels, Some("+Inf"));
                let _ = writeln!(out, "{name}_bucket{inf} {}", hist.count);
                let plain = braces(&key.labels, None);
                let _ = writeln!(out, "{name}_sum{plain} {}", hist.sum);
                let _ = writeln!(out, "{name}_count{plain} {}", hist.count);
            }
        }
    }
}

fn braces(labels: Labels<'_>, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Counts one failed status cache call.
pub fn cache_error() {
    global().inc("orchestrator_cache_errors_total", &[]);
}

/// Counts one failed blob store call while `doing` (`read_result`, `purge`...).
pub fn blob_error(doing: &'static str) {
    global().inc("orchestrator_blob_errors_total", &[("doing", doing)]);
}

/// Counts one task brought to `status` for `reason` (a fixed word per cause).
pub fn task_finished(status: crate::task::TaskStatus, reason: &'static str) {
    global().inc(
        "orchestrator_tasks_finished_total",
        &[("status", status.as_str()), ("reason", reason)],
    );
}

/// Records the time a task spent in `phase` (`prepare`, `run`, `finish`).
pub fn phase(phase: &'static str, elapsed: Duration) {
    global().observe("orchestrator_phase_seconds", &[("phase", phase)], elapsed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_with_their_labels() {
        let registry = Registry::default();
        registry.inc(
            "orchestrator_tasks_finished_total",
            &[("status", "COMPLETED"), ("reason", "completed")],
        );
        registry.inc(
            "orchestrator_tasks_finished_total",
            &[("status", "COMPLETED"), ("reason", "completed")],
        );
        registry.observe(
            "orchestrator_phase_seconds",
            &[("phase", "prepare")],
            Duration::from_millis(300),
        );
        let mut text = String::new();
        registry.render(&mut text);
        assert!(
            text.contains(
                "orchestrator_tasks_finished_total{status=\"COMPLETED\",reason=\"completed\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("orchestrator_phase_seconds_bucket{phase=\"prepare\",le=\"0.5\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("orchestrator_phase_seconds_bucket{phase=\"prepare\",le=\"0.1\"} 0"),
            "{text}"
        );
        assert!(text.contains("# TYPE orchestrator_runs_lost_total counter"));
        assert_eq!(
            registry.counter(
                "orchestrator_tasks_finished_total",
                &[("status", "COMPLETED"), ("reason", "completed")]
            ),
            2
        );
    }
}
