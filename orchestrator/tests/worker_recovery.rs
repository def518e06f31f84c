//! Shutdown, crashes and the reconciler: every task ends in a terminal state, whatever
//! stopped the server and wherever, and a run that goes on is picked up, not failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use orchestrator::reconciler::{Action, Step};
use orchestrator::{TaskLimits, TaskStatus};
use worker_support::faults::PanickyRunner;
use worker_support::*;

/// A fake agent that says it started (and counts its starts), then waits until the test
/// creates `go`, then runs `then`.
fn agent_waiting_for(data: &DataDir, then: &str) -> std::path::PathBuf {
    let go = data.path().join("go");
    data.write_agent(&format!(
        "echo started >> '{starts}'\n\
         echo \"{{\\\"type\\\":\\\"started\\\",\\\"pid\\\":$$}}\"\n\
         while [ ! -e '{go}' ]; do sleep 0.05; done\n\
         {then}",
        starts = data.path().join("starts").display(),
        go = go.display()
    ));
    go
}

fn starts(data: &DataDir) -> usize {
    std::fs::read_to_string(data.path().join("starts"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn quick_reconciler(config: &mut orchestrator::OrchestratorConfig) {
    config.reconciler.pending_after_secs = 0;
    config.reconciler.queued_after_secs = 0;
    config.reconciler.lost_after_secs = 0;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_shutdown_a_running_task_may_finish_and_no_new_one_starts() {
    let data = DataDir::new();
    let go = agent_waiting_for(&data, "exit 0");
    let harness = Harness::open(test_config(&data, |_| {})).await;
    let (shutdown, worker) = harness.start_worker();

    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    harness.first_event(task.id, "started").await;
    shutdown.cancel();
    let later = harness
        .submit_zip(&[("b.txt", "b")], TaskLimits::default())
        .await;
    std::fs::write(&go, "").unwrap();
    worker.await.unwrap();

    assert_eq!(harness.get(task.id).await.status, TaskStatus::Completed);
    assert_eq!(harness.get(later.id).await.status, TaskStatus::Queued);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_shutdown_grace_the_run_goes_on_and_the_next_worker_re_attaches() {
    let data = DataDir::new();
    let go = agent_waiting_for(
        &data,
        "echo '{\"type\":\"after_restart\"}'\nresult '{\"status\":\"completed\",\"turns\":1}'\nexit 0",
    );
    let config = test_config(&data, |c| {
        c.worker.shutdown_grace_secs = 0;
        quick_reconciler(c);
    });
    let harness = Harness::open(config.clone()).await;
    let (shutdown, worker) = harness.start_worker();
    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    let started = harness.first_event(task.id, "started").await;
    shutdown.cancel();
    worker.await.unwrap();

    let pid = started["pid"].as_i64().unwrap();
    assert!(pid_running(pid), "the run was stopped, not detached");
    let left = harness.get(task.id).await;
    assert_eq!(left.status, TaskStatus::RunningAgent);
    assert_eq!(
        left.lease_holder, None,
        "the lease was released for the next worker"
    );

    // The next worker (after a deploy, say) gets the task from the reconciler at once.
    let report = harness.reconciler().pass().await;
    assert_eq!(report.steps_for(task.id), [&Step::Repaired(Action::Adopt)]);
    let (_shutdown, _worker) = harness.start_worker();
    std::fs::write(&go, "").unwrap();
    harness.first_event(task.id, "after_restart").await;
    let done = harness.events_until_closed(task.id).await;
    assert_eq!(
        harness.get(task.id).await.status,
        TaskStatus::Completed,
        "{done:?}"
    );
    assert_eq!(starts(&data), 1, "the agent ran once");
    // The new worker replayed the run from its start; the stream shows each event once.
    let kinds: Vec<&str> = done.iter().filter_map(|e| e["type"].as_str()).collect();
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(
        (count("started"), count("after_restart")),
        (1, 1),
        "{kinds:?}"
    );
}

/// Runs a task until its agent started, then "crashes" the server (the worker is
/// aborted at whatever line it was on, its lease left to expire; the agent process lives
/// on) and opens new services over the same data folder, as a restarted server would.
async fn crash_mid_run(data: &DataDir) -> (Harness, orchestrator::TaskId) {
    let harness = Harness::open(test_config(data, quick_reconciler)).await;
    let (_shutdown, worker) = harness.start_worker();
    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    harness.first_event(task.id, "started").await;
    worker.abort();
    let _ = worker.await;
    drop(harness);
    let restarted = Harness::open(test_config(data, quick_reconciler)).await;
    (restarted, task.id)
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_crash_a_running_agent_is_re_attached_and_its_task_completes() {
    let data = DataDir::new();
    let go = agent_waiting_for(
        &data,
        "result '{\"status\":\"completed\",\"turns\":1}'\nexit 0",
    );
    let (restarted, id) = crash_mid_run(&data).await;
    let reconciler = restarted.reconciler();
    let (_shutdown, _worker) = restarted.start_worker();

    // The lease is still live: nobody touches the run until it expired.
    assert!(reconciler.pass().await.steps_for(id).is_empty());
    let adopted = tokio::time::timeout(SETTLE, async {
        loop {
            let report = reconciler.pass().await;
            if !report.steps_for(id).is_empty() {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(adopted.steps_for(id), [&Step::Repaired(Action::Adopt)]);
    // The re-attached worker replays the run's events to the (new, empty) cache.
    restarted.first_event(id, "started").await;
    std::fs::write(&go, "").unwrap();
    restarted.events_until_closed(id).await;
    let done = restarted.get(id).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.attempt, 1, "re-attached, not run again");
    assert_eq!(starts(&data), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_crash_a_run_that_ended_meanwhile_is_finished_from_its_exit_record() {
    let data = DataDir::new();
    let go = agent_waiting_for(&data, "exit 1");
    let (restarted, id) = crash_mid_run(&data).await;
    std::fs::write(&go, "").unwrap();

    let reconciler = restarted.reconciler();
    let failed = restarted.reconcile_until_terminal(&reconciler, id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.message.as_deref(),
        Some("the agent exited with code 1 (error)")
    );
    // Followers of the restarted server see the end too.
    assert_eq!(
        statuses(&restarted.events_until_closed(id).await),
        ["UPLOADING_RESULTS", "FAILED"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_host_crash_that_took_the_run_with_it_the_task_fails_as_lost() {
    let data = DataDir::new();
    agent_waiting_for(&data, "exit 0");
    let (restarted, id) = crash_mid_run(&data).await;
    kill_task_processes(id);

    let reconciler = restarted.reconciler();
    let failed = restarted.reconcile_until_terminal(&reconciler, id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(
        failed.message.as_deref().unwrap().contains("lost"),
        "{:?}",
        failed.message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preparation_abandoned_by_a_dead_worker_is_retried_under_a_new_attempt() {
    let data = DataDir::new();
    data.write_agent("exit 0");
    let harness = Harness::open(test_config(&data, quick_reconciler)).await;
    let input = harness.upload_zip(&[("a.txt", "a")]).await;
    let task = harness.create(input, TaskLimits::default()).await;
    // A worker claimed it and died mid-clone: its lease runs out.
    harness
        .services
        .store
        .claim(task.id, "dead-worker/1", Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let report = harness.reconciler().pass().await;
    assert_eq!(report.steps_for(task.id), [&Step::Repaired(Action::Retry)]);
    let (_shutdown, _worker) = harness.start_worker();
    harness.events_until_closed(task.id).await;
    let done = harness.get(task.id).await;
    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.message);
    assert_eq!(done.attempt, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preparation_abandoned_on_every_attempt_fails_saying_why() {
    let data = DataDir::new();
    let harness = Harness::open(test_config(&data, |c| {
        quick_reconciler(c);
        c.worker.max_attempts = 2;
    }))
    .await;
    let input = harness.upload_zip(&[("a.txt", "a")]).await;
    let task = harness.create(input, TaskLimits::default()).await;
    for n in 0..2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        harness
            .services
            .store
            .claim(task.id, &format!("dead-worker/{n}"), Duration::ZERO)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;

    let reconciler = harness.reconciler();
    let failed = harness.reconcile_until_terminal(&reconciler, task.id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    let message = failed.message.unwrap();
    assert!(message.contains("2 attempts"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_whose_message_never_reached_the_queue_is_sent_from_the_outbox() {
    let data = DataDir::new();
    data.write_agent("exit 0");
    let harness = Harness::open(test_config(&data, quick_reconciler)).await;
    let (_shutdown, _worker) = harness.start_worker();
    let input = harness.upload_zip(&[("a.txt", "a")]).await;
    // Stored, and its creator died before sending the message.
    let task = harness.create(input, TaskLimits::default()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let report = harness.reconciler().pass().await;
    assert!(
        report.steps_for(task.id).contains(&&Step::Relayed),
        "{report:?}"
    );
    harness.events_until_closed(task.id).await;
    assert_eq!(harness.get(task.id).await.status, TaskStatus::Completed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_task_whose_message_was_lost_is_enqueued_again() {
    let data = DataDir::new();
    data.write_agent("exit 0");
    let harness = Harness::open(test_config(&data, quick_reconciler)).await;
    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    // A restart loses the in-process queue and its message.
    drop(harness);
    let fresh = Harness::open(test_config(&data, quick_reconciler)).await;
    assert!(fresh.queue.is_empty());
    tokio::time::sleep(Duration::from_millis(20)).await;

    let report = fresh.reconciler().pass().await;
    assert_eq!(report.steps_for(task.id), [&Step::Requeued]);
    assert_eq!(fresh.queue.len(), 1);

    let (_shutdown, _worker) = fresh.start_worker();
    fresh.events_until_closed(task.id).await;
    assert_eq!(fresh.get(task.id).await.status, TaskStatus::Completed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_past_its_deadline_is_stopped_and_its_task_failed() {
    let data = DataDir::new();
    agent_waiting_for(&data, "exit 0");
    let config = test_config(&data, |c| c.reconciler.deadline_slack_secs = 0);
    let harness = Harness::open(config).await;
    let (_shutdown, _worker) = harness.start_worker();
    let limits = TaskLimits {
        timeout_secs: Some(1),
        ..TaskLimits::default()
    };
    let task = harness.submit_zip(&[("a.txt", "a")], limits).await;
    let started = harness.first_event(task.id, "started").await;

    harness.events_until_closed(task.id).await;
    let failed = harness.get(task.id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(failed.message.unwrap().starts_with("deadline exceeded"));
    assert!(gone_eventually(started["pid"].as_i64().unwrap()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_orphaned_run_of_a_finished_task_is_removed() {
    let data = DataDir::new();
    agent_waiting_for(&data, "exit 0");
    let (restarted, id) = crash_mid_run(&data).await;
    // Finished behind the run's back (an operator, say): the run no row wants.
    let task = restarted.get(id).await;
    restarted
        .services
        .store
        .transition(id, task.status, TaskStatus::Failed, Default::default())
        .await
        .unwrap();
    let name = orchestrator::RunHandle(task.runner_ref.unwrap());

    let report = restarted.reconciler().pass().await;
    assert!(
        report
            .steps_for(id)
            .contains(&&Step::RemovedOrphan(name.0.clone())),
        "{report:?}"
    );
    assert_eq!(
        restarted.services.runner.status(&name).await.unwrap(),
        orchestrator::RunStatus::NotFound
    );
    assert!(processes_of_task(id).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_redelivered_after_its_launcher_died_is_re_attached_not_run_again() {
    let data = DataDir::new();
    let go = agent_waiting_for(
        &data,
        "result '{\"status\":\"completed\",\"turns\":1}'\nexit 0",
    );
    let mut runner = None;
    let harness = Harness::open_with(test_config(&data, |_| {}), |services| {
        let stalling = Arc::new(PanickyRunner::new(services.runner.clone()));
        stalling.stall_next_launch.store(true, Ordering::SeqCst);
        services.runner = stalling.clone();
        runner = Some(stalling);
    })
    .await;
    let runner = runner.unwrap();
    let (_shutdown, worker) = harness.start_worker();
    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    // The run started; its launcher dies before recording it (the row still says
    // DOWNLOADING_CODE, naming the run), and its lease runs out.
    let deadline = tokio::time::Instant::now() + SETTLE;
    while starts(&data) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.abort();
    let _ = worker.await;
    let left = harness.get(task.id).await;
    assert_eq!(left.status, TaskStatus::DownloadingCode);
    assert!(left.runner_ref.is_some(), "{left:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The queue delivers the task again (an offset that was never committed).
    harness.enqueue(task.id).await;
    let (_shutdown, _worker) = harness.start_worker();
    harness.first_event(task.id, "started").await;
    std::fs::write(&go, "").unwrap();
    harness.events_until_closed(task.id).await;
    let done = harness.get(task.id).await;
    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.message);
    assert_eq!(done.attempt, 1, "re-attached, not claimed again");
    assert_eq!(starts(&data), 1, "the agent ran twice");
    assert_eq!(runner.launches.load(Ordering::SeqCst), 1);
}
