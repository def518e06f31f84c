//! Where a task changes hands: a cancel that lands while the workspace is being prepared
//! (the agent must never start), and tasks created by another process that reach this
//! process's worker through the store's outbox.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use orchestrator::worker::OutboxFeed;
use orchestrator::{TaskLimits, TaskOps, TaskStatus};
use tokio::sync::Notify;
use worker_support::faults::{GatedBlobs, PanickyRunner};
use worker_support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_during_preparation_never_launches_the_agent() {
    let data = DataDir::new();
    data.write_agent("exit 0");
    let gate = Arc::new(Notify::new());
    let mut blobs = None;
    let mut runner = None;
    let harness = Harness::open_with(
        test_config(&data, |c| c.worker.concurrency = 1),
        |services| {
            let gated = Arc::new(GatedBlobs::new(services.blobs.clone()));
            *gated.download_gate.lock().unwrap() = Some(gate.clone());
            let counting = Arc::new(PanickyRunner::new(services.runner.clone()));
            services.blobs = gated.clone();
            services.runner = counting.clone();
            blobs = Some(gated);
            runner = Some(counting);
        },
    )
    .await;
    let (blobs, runner) = (blobs.unwrap(), runner.unwrap());
    let (_shutdown, _worker) = harness.start_worker();

    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    // The worker is preparing: its download of the upload waits at the gate.
    harness.first_event(task.id, "status").await;
    tokio::time::timeout(SETTLE, async {
        while harness.get(task.id).await.status != TaskStatus::DownloadingCode {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the worker never started preparing");
    TaskOps::new(&harness.services)
        .cancel(task.id, Some("alice"))
        .await
        .unwrap();
    // The preparation may now finish; the task is no longer the worker's to launch.
    *blobs.download_gate.lock().unwrap() = None;
    gate.notify_one();

    // The only worker loop goes on to the next task, so the cancelled one is settled.
    let next = harness
        .submit_zip(&[("b.txt", "b")], TaskLimits::default())
        .await;
    harness.events_until_closed(next.id).await;
    assert_eq!(harness.get(next.id).await.status, TaskStatus::Completed);
    let cancelled = harness.get(task.id).await;
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(cancelled.runner_ref, None, "a run was named for it");
    assert_eq!(
        runner.launches.load(Ordering::SeqCst),
        1,
        "only the second task's agent may start"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_another_process_left_in_the_outbox_is_fed_to_this_worker_once() {
    let data = DataDir::new();
    data.write_agent(r#"result '{"status":"completed"}'; exit 0"#);
    let harness = Harness::open(test_config(&data, |_| {})).await;
    let (_shutdown, _worker) = harness.start_worker();
    // Stored with its outbox entry and never sent: what an API-only process does.
    let input = harness.upload_zip(&[("a.txt", "a")]).await;
    let task = harness.create(input, TaskLimits::default()).await;

    let feed = OutboxFeed::new(harness.services.clone());
    assert_eq!(feed.poll_once().await, 1);
    harness.events_until_closed(task.id).await;
    let done = harness.get(task.id).await;
    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.message);
    assert_eq!(done.attempt, 1);
    // The entry is gone: the next poll sends nothing.
    assert_eq!(feed.poll_once().await, 0);
}
