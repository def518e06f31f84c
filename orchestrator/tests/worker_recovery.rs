//! Shutdown, crashes and the reconciler: every task ends in a terminal state, whatever
//! stopped the server and wherever.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use orchestrator::reconciler::Action;
use orchestrator::{InputSource, TaskLimits, TaskStatus, TaskUpdate};
use worker_support::*;

/// A fake agent that says it started, then waits until the test creates `go`, then
/// runs `then`.
fn agent_waiting_for(data: &DataDir, then: &str) -> std::path::PathBuf {
    let go = data.path().join("go");
    data.write_agent(&format!(
        "echo \"{{\\\"type\\\":\\\"started\\\",\\\"pid\\\":$$}}\"\n\
         while [ ! -e '{go}' ]; do sleep 0.05; done\n\
         {then}",
        go = go.display()
    ));
    go
}

fn quick_reconciler(config: &mut orchestrator::OrchestratorConfig) {
    config.reconciler.pending_after_secs = 0;
    config.reconciler.queued_after_secs = 0;
    config.reconciler.lost_after_secs = 0;
    config.reconciler.prepare_timeout_secs = 0;
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
async fn past_the_shutdown_grace_runs_are_stopped_and_left_for_the_reconciler() {
    let data = DataDir::new();
    agent_waiting_for(&data, "exit 0");
    let config = test_config(&data, |c| {
        c.worker.shutdown_grace_secs = 0;
        quick_reconciler(c);
    });
    let harness = Harness::open(config).await;
    let (shutdown, worker) = harness.start_worker();

    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    let started = harness.first_event(task.id, "started").await;
    shutdown.cancel();
    worker.await.unwrap();

    assert!(gone_eventually(started["pid"].as_i64().unwrap()).await);
    let left = harness.get(task.id).await;
    assert_eq!(left.status, TaskStatus::RunningAgent);
    // The delivery was not acked: it is back on the queue.
    assert_eq!(harness.queue.len(), 1);

    let mut reconciler = harness.reconciler();
    let failed = harness
        .reconcile_until_terminal(&mut reconciler, task.id)
        .await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.message.as_deref(),
        Some("agent process lost (server restarted?)")
    );
}

/// Runs a task until its agent started, then "crashes" the server (the worker is
/// aborted at whatever line it was on; the agent process lives on) and opens new
/// services over the same data folder, as a restarted server would.
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
async fn after_a_crash_a_run_that_dies_without_result_ends_failed() {
    let data = DataDir::new();
    let go = agent_waiting_for(&data, "exit 1");
    let (restarted, id) = crash_mid_run(&data).await;
    let mut reconciler = restarted.reconciler();

    // Its process is still alive: the reconciler leaves it alone.
    assert_eq!(restarted.get(id).await.status, TaskStatus::RunningAgent);
    let taken = reconciler.pass().await.unwrap();
    assert!(taken.iter().all(|(task, _)| *task != id), "{taken:?}");

    std::fs::write(&go, "").unwrap();
    let failed = restarted
        .reconcile_until_terminal(&mut reconciler, id)
        .await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.message.as_deref(),
        Some("agent process lost (server restarted?)")
    );
    // Followers of the restarted server see the end too.
    assert_eq!(
        statuses(&restarted.events_until_closed(id).await),
        ["UPLOADING_RESULTS", "FAILED"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_crash_a_run_that_finished_its_work_ends_completed() {
    let data = DataDir::new();
    let go = agent_waiting_for(
        &data,
        "result '{\"status\":\"completed\",\"turns\":1}'\nexit 0",
    );
    let (restarted, id) = crash_mid_run(&data).await;
    std::fs::write(&go, "").unwrap();

    let mut reconciler = restarted.reconciler();
    let done = restarted
        .reconcile_until_terminal(&mut reconciler, id)
        .await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result.unwrap()["status"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_crash_during_preparation_the_task_ends_failed() {
    let data = DataDir::new();
    data.write_agent("exit 0");
    let harness = Harness::open(test_config(&data, quick_reconciler)).await;
    let task = harness
        .create(
            InputSource::Zip {
                zip_name: "a.zip".to_string(),
                zip_key: "uploads/a.zip".to_string(),
            },
            TaskLimits::default(),
        )
        .await;
    // Where a worker that died mid-clone left it.
    let store = &harness.services.store;
    for (from, to) in [
        (TaskStatus::Pending, TaskStatus::Queued),
        (TaskStatus::Queued, TaskStatus::Processing),
        (TaskStatus::Processing, TaskStatus::DownloadingCode),
    ] {
        store
            .transition(task.id, from, to, TaskUpdate::default())
            .await
            .unwrap();
    }

    let mut reconciler = harness.reconciler();
    let failed = harness
        .reconcile_until_terminal(&mut reconciler, task.id)
        .await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(
        failed
            .message
            .unwrap()
            .contains("preparation did not finish")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_task_never_enqueued_is_queued_and_run() {
    let data = DataDir::new();
    data.write_agent("exit 0");
    let harness = Harness::open(test_config(&data, quick_reconciler)).await;
    let (_shutdown, _worker) = harness.start_worker();
    let key = "uploads/x.zip".to_string();
    harness
        .services
        .blobs
        .put_bytes(&key, zip_of(&[("a.txt", "a")]))
        .await
        .unwrap();
    let task = harness
        .create(
            InputSource::Zip {
                zip_name: "x.zip".to_string(),
                zip_key: key,
            },
            TaskLimits::default(),
        )
        .await;

    let taken = harness.reconciler().pass().await.unwrap();
    assert_eq!(taken, [(task.id, Action::Enqueue)]);
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

    let mut reconciler = fresh.reconciler();
    assert_eq!(
        reconciler.pass().await.unwrap(),
        [(task.id, Action::Requeue)]
    );
    assert_eq!(fresh.queue.len(), 1);

    let (_shutdown, _worker) = fresh.start_worker();
    fresh.events_until_closed(task.id).await;
    assert_eq!(fresh.get(task.id).await.status, TaskStatus::Completed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_past_its_deadline_is_failed_and_its_run_killed() {
    let data = DataDir::new();
    agent_waiting_for(&data, "exit 0");
    let config = test_config(&data, |c| {
        quick_reconciler(c);
        c.reconciler.deadline_slack_secs = 0;
    });
    let harness = Harness::open(config).await;
    let (_shutdown, _worker) = harness.start_worker();
    let limits = TaskLimits {
        timeout_secs: Some(0),
        ..TaskLimits::default()
    };
    let task = harness.submit_zip(&[("a.txt", "a")], limits).await;
    let started = harness.first_event(task.id, "started").await;

    let mut reconciler = harness.reconciler();
    let failed = harness
        .reconcile_until_terminal(&mut reconciler, task.id)
        .await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(failed.message.unwrap().starts_with("deadline exceeded"));
    assert!(gone_eventually(started["pid"].as_i64().unwrap()).await);
    // The worker let go of it: the stream closes and the row stays as the reconciler left it.
    harness.events_until_closed(task.id).await;
    assert_eq!(harness.get(task.id).await.status, TaskStatus::Failed);
}
