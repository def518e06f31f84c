//! End to end, the server's own life: killed mid-task and started again on the same data
//! folder, every task ends in a terminal state; stopped with SIGTERM while idle, it
//! exits cleanly at once.
//!
//! Two crashes, two endings:
//! - **The server alone dies** (a worker crash, a deploy): `SIGKILL` to the server
//!   process only. Its agent lives on (the run's supervisor leads a process group of its
//!   own), and the restarted server re-attaches to the run once the dead worker's lease
//!   expired: the task ends `COMPLETED` with its diff, the agent having run once.
//! - **The host dies**: the server and every process of the running task die at once.
//!   The run is gone without an exit record, so the task fails as lost, and the task
//!   that waited in the queue runs to completion after the restart.

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

/// After the restart: leases short enough to expire within the test's patience, and a
/// reconciler that looks every 200 ms.
const REATTACH_CONFIG: &str = "[orchestrator.worker]
concurrency = 1
lease_secs = 2
cancel_poll_ms = 200

[orchestrator.reconciler]
interval_ms = 200
";

/// The command the agent blocks in until the test lets it go.
const HOLD: &str = "sleep 3517";

/// Processes of the task running `command` (its argv joined by spaces).
fn processes_running(task_id: &str, command: &str) -> Vec<i32> {
    processes_of_task(task_id)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let argv: Vec<_> = cmdline
                    .split(|b| *b == 0)
                    .filter(|arg| !arg.is_empty())
                    .map(String::from_utf8_lossy)
                    .collect();
                argv.join(" ").ends_with(command)
            })
        })
        .collect()
}

/// Requests that open a conversation (no assistant turn yet): one per agent start.
fn conversations_started(model: &scripted_model::ScriptedServer) -> usize {
    model
        .requests()
        .iter()
        .filter(|request| {
            request.body["messages"].as_array().is_some_and(|messages| {
                !messages.is_empty() && messages.iter().all(|m| m["role"] != "assistant")
            })
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_outlives_a_killed_server_and_is_re_attached_after_the_restart() {
    // The agent blocks in its shell until the test ends the command, then fixes calc.py.
    let [fix, done] = fix_add_steps();
    let model = scripted_model(json!([shell_step(HOLD), fix, done])).await;
    let home = Home::new(REATTACH_CONFIG);
    let mut api = Api::start(&home, "127.0.0.1:0", &model).await;
    let zip = zip_of(&[("calc.py", CALC_PY)]);
    let id = api.created_id(api.submit_zip(zip, "fix add").await).await;
    api.wait_for_status(&id, |s| s == "RUNNING_AGENT").await;
    let holding = eventually(WAIT, || async {
        (!processes_running(&id, HOLD).is_empty()).then_some(())
    })
    .await;
    assert!(holding.is_some(), "the agent never reached its shell");

    // The server alone dies; the run must not.
    let killed = api.stop_with(Signal::SIGKILL).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed),
        Some(9)
    );
    let first_log = api.log();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !processes_running(&id, HOLD).is_empty(),
        "the agent died with the server"
    );

    let api = Api::start(&home, &api.addr, &model).await;
    // The restarted worker takes the run over (once the dead worker's lease expired)
    // while the agent still waits in its shell.
    let taken_over = eventually(WAIT, || async {
        api.log()
            .lines()
            .any(|line| {
                line.contains("task claimed")
                    && line.contains(&id)
                    && line.contains("RUNNING_AGENT")
            })
            .then_some(())
    })
    .await;
    assert!(
        taken_over.is_some(),
        "the run was not taken over\nbefore the crash:\n{first_log}\nafter:\n{}",
        api.log()
    );
    assert_eq!(api.task(&id).await["status"], "RUNNING_AGENT");
    for pid in processes_running(&id, HOLD) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }

    let finished = api.wait_for_status(&id, is_terminal).await;
    assert_eq!(finished["status"], "COMPLETED", "{finished}\n{}", api.log());
    let diff = api.artifact(&id, "diff.patch").await;
    assert!(diff.contains("+    return a + b"), "{diff}");
    assert_eq!(conversations_started(&model), 1, "the agent started again");
    assert_eq!(model.steps_consumed(), 3);
    // The restarted server followed the run itself: the agent's own events, from the
    // start of the run to its end, reach a reader after the restart.
    let events = api.follow_events(&id).await;
    let kinds: Vec<&str> = events.iter().map(SseEvent::kind).collect();
    assert!(kinds.contains(&"task_started"), "{kinds:?}");
    assert!(kinds.contains(&"task_finished"), "{kinds:?}");
    assert_eq!(events.last().unwrap().data["status"], "COMPLETED");
    assert_no_process_left(&id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_host_crash_the_lost_run_fails_and_the_queued_task_runs_to_completion() {
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
