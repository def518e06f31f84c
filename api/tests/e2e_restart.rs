//! End to end, the server's own life: killed mid-task and started again on the same data
//! folder, every task ends in a terminal state; stopped with SIGTERM while idle, it
//! exits cleanly at once.
//!
//! The crash is a host crash: the server gets SIGKILL and so does every process of the
//! running task (its agent and the agent's shell command), as when the machine goes
//! down. The other crash, the server alone dying and its agent living on as an orphan,
//! ends differently: the restarted reconciler sees the run alive and leaves it until it
//! exits or passes its deadline, which is the reconciler's unit tests' business.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::time::Duration;

use e2e_support::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

fn is_terminal(status: &str) -> bool {
    matches!(status, "COMPLETED" | "FAILED" | "CANCELLED")
}

/// One task at a time, so a second task waits in the queue while the first runs.
const FIRST_CONFIG: &str = "[orchestrator.worker]\nconcurrency = 1\n";
/// After the restart: a reconciler that looks every 200 ms and calls a task stale after
/// a second, so recovery happens within the test's patience.
const RESTART_CONFIG: &str = "[orchestrator.worker]
concurrency = 1

[orchestrator.reconciler]
interval_ms = 200
pending_after_secs = 1
queued_after_secs = 1
lost_after_secs = 1
";

#[tokio::test(flavor = "multi_thread")]
async fn after_a_crash_the_lost_run_fails_and_the_queued_task_runs_to_completion() {
    // The first task's agent blocks in its shell; the second task gets the fix.
    let [fix, done] = fix_add_steps();
    let model = scripted_model(json!([shell_step("sleep 600"), fix, done])).await;
    let home = Home::new(FIRST_CONFIG);
    let mut api = Api::start(&home, "127.0.0.1:0", &model).await;
    let zip = zip_of(&[("calc.py", CALC_PY)]);

    let running = api
        .created_id(api.submit_zip(zip.clone(), "wait").await)
        .await;
    api.wait_for_status(&running, |s| s == "RUNNING_AGENT")
        .await;
    let shell_started = eventually(WAIT, || async {
        (model.steps_consumed() == 1 && processes_of_task(&running).len() >= 2).then_some(())
    })
    .await;
    assert!(shell_started.is_some(), "the agent never reached its shell");
    let queued = api.created_id(api.submit_zip(zip, "fix add").await).await;
    assert_eq!(api.task(&queued).await["status"], "QUEUED");

    // The host goes down: the server and everything the run started die at once.
    let killed = api.stop_with(Signal::SIGKILL).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed),
        Some(9)
    );
    for pid in processes_of_task(&running) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    assert_no_process_left(&running).await;

    std::fs::write(home.dir.path().join("config.toml"), RESTART_CONFIG).unwrap();
    let api = Api::start(&home, &api.addr, &model).await;

    let lost = api.wait_for_status(&running, is_terminal).await;
    assert_eq!(lost["status"], "FAILED", "{lost}");
    let message = lost["message"].as_str().unwrap();
    assert!(message.contains("lost"), "unclear message: {message}");
    // A reader arriving after the restart still learns how it ended.
    let events = api.follow_events(&running).await;
    assert_eq!(events.last().unwrap().data["status"], "FAILED");

    let completed = api.wait_for_status(&queued, is_terminal).await;
    assert_eq!(completed["status"], "COMPLETED", "{completed}");
    let diff = api.artifact(&queued, "diff.patch").await;
    assert!(diff.contains("+    return a + b"), "{diff}");
    assert_eq!(model.steps_consumed(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_an_idle_server_cleanly_at_once() {
    let model = scripted_model(json!([{"type": "message", "content": "unused"}])).await;
    let home = Home::new("");
    let mut api = Api::start(&home, "127.0.0.1:0", &model).await;
    let ready = api
        .http
        .get(api.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(ready, 200);

    // Far below the worker's 30 s shutdown grace: an idle server has nothing to wait for.
    let status = api
        .stop_within(Signal::SIGTERM, Duration::from_secs(10))
        .await;
    assert!(status.success(), "{status:?}\n{}", api.log());
    assert!(api.log().contains("stopped"), "{}", api.log());
}
