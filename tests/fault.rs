//! What every fault test checks, in one place: a load of small tasks (each with a
//! description of its own, so the model's requests can be counted per task), a probe
//! that reads over HTTP through the fault and remembers every answer, and the checks
//! that follow: every task terminal, none lost, none run twice, and no stretch of 5xx
//! answers longer than the fault.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scripted_model::ScriptedServer;
use serde_json::{Value, json};
use test_support::{Api, CALC_PY, zip_of};

/// Lease, reconciler and lost-run settings short enough that recovery happens within a
/// test's patience; a publish that gives up quickly (the outbox relays it later).
pub const QUICK_RECOVERY: &str = "[orchestrator.worker]
lease_secs = 2
cancel_poll_ms = 200
outbox_poll_ms = 200

[orchestrator.reconciler]
interval_ms = 300
pending_after_secs = 2
queued_after_secs = 2
";

/// How long past a fault's end the service may still answer 5xx (reconnects, backoff).
pub const GRACE: Duration = Duration::from_secs(10);

/// A script for `tasks` trivial runs: each answers one model request, after `delay_ms`
/// (so runs are in flight while the fault happens). No spare steps: a run started twice
/// finds the script used up and fails visibly.
pub fn slow_answers(tasks: usize, delay_ms: u64) -> Value {
    let step = json!({"type": "delay", "ms": delay_ms,
        "then": {"type": "message", "content": "Nothing to change."}});
    Value::Array(vec![step; tasks])
}

/// The description of load task `n`.
pub fn description(n: usize) -> String {
    format!("fault-load-task-{n:03}: look, change nothing")
}

/// Submits load task `n` (a zip); returns the response.
pub async fn submit(api: &Api, n: usize) -> reqwest::Response {
    api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), &description(n))
        .await
}

/// How many agent runs of load task `n` the model saw (requests that open a
/// conversation and carry the task's description).
pub fn runs_of(model: &ScriptedServer, n: usize) -> usize {
    let wanted = description(n);
    model
        .requests()
        .iter()
        .filter(|request| {
            let messages = request.body["messages"].as_array();
            messages.is_some_and(|messages| {
                messages.iter().all(|m| m["role"] != "assistant")
                    && messages.iter().any(|m| {
                        m["content"]
                            .as_str()
                            .is_some_and(|text| text.contains(&wanted))
                    })
            })
        })
        .count()
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "COMPLETED" | "FAILED" | "CANCELLED")
}

/// Every task reaches a terminal state within `bound` (none lost); returns the tasks.
/// Otherwise fails with where each task is and `logs()` (the workers' logs).
pub async fn all_terminal(
    api: &Api,
    ids: &[String],
    bound: Duration,
    logs: impl Fn() -> String,
) -> Vec<Value> {
    let deadline = Instant::now() + bound;
    loop {
        let mut tasks = Vec::new();
        for id in ids {
            tasks.push(api.task(id).await);
        }
        if tasks
            .iter()
            .all(|task| task["status"].as_str().is_some_and(is_terminal))
        {
            return tasks;
        }
        if Instant::now() >= deadline {
            let statuses: Vec<&Value> = tasks.iter().map(|task| &task["status"]).collect();
            panic!(
                "tasks not finished within {bound:?}: {statuses:?}\n{tasks:?}\nlogs:\n{}",
                logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One answer the probe got: when, and its status (`None`: no answer at all).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub status: Option<u16>,
}

/// Reads `paths` on an API process every 100 ms until finished.
pub struct Probe {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    pub fn start(api: &Api, paths: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (http, base) = (api.http.clone(), api.base.clone());
        let (stopping, sink) = (stop.clone(), samples.clone());
        let task = tokio::spawn(async move {
            while !stopping.load(Ordering::Relaxed) {
                for path in &paths {
                    let answer = http
                        .get(format!("{base}{path}"))
                        .bearer_auth(test_support::TOKEN)
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    let status = answer.ok().map(|response| response.status().as_u16());
                    sink.lock().unwrap().push(Sample {
                        at: Instant::now(),
                        status,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            stop,
            samples,
            task,
        }
    }

    /// Stops probing; returns what it saw.
    pub async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.samples.lock().unwrap().clone()
    }
}

/// The fault's window, as the test saw it.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

/// No 5xx (nor a missing answer) outside the fault's window plus [`GRACE`], and the
/// longest run of them no longer than the fault itself plus [`GRACE`].
pub fn assert_no_5xx_beyond(samples: &[Sample], window: Window) {
    let bad = |sample: &Sample| sample.status.is_none_or(|status| status >= 500);
    let late: Vec<&Sample> = samples
        .iter()
        .filter(|s| bad(s) && (s.at < window.start || s.at > window.end + GRACE))
        .collect();
    assert!(
        late.is_empty(),
        "5xx or no answer outside the fault ({:?} after its end): {:?}",
        window.end.elapsed(),
        late.iter()
            .map(|s| (s.at - window.start, s.status))
            .collect::<Vec<_>>()
    );
    let mut longest = Duration::ZERO;
    let mut run_start: Option<Instant> = None;
    for sample in samples {
        match (bad(sample), run_start) {
            (true, None) => run_start = Some(sample.at),
            (true, Some(start)) => longest = longest.max(sample.at - start),
            (false, _) => run_start = None,
        }
    }
    let fault = window.end - window.start;
    assert!(
        longest <= fault + GRACE,
        "5xx for {longest:?}, the fault lasted {fault:?}"
    );
    assert!(
        samples.iter().any(|s| s.at > window.end && !bad(s)),
        "the probe never saw the service answer after the fault"
    );
}
