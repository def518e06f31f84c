//! A dependency down for a while: the tasks it holds up wait for it and then go on;
//! none fails because of an outage that ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use orchestrator::{TaskLimits, TaskStatus};
use worker_support::faults::GatedBlobs;
use worker_support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_store_down_during_preparation_delays_the_task_and_does_not_fail_it() {
    let data = DataDir::new();
    data.write_agent(r#"result '{"status":"completed"}'; exit 0"#);
    let mut blobs = None;
    let harness = Harness::open_with(test_config(&data, |_| {}), |services| {
        let gated = Arc::new(GatedBlobs::new(services.blobs.clone()));
        services.blobs = gated.clone();
        blobs = Some(gated);
    })
    .await;
    let blobs = blobs.unwrap();
    let input = harness.upload_zip(&[("a.txt", "a")]).await;
    // Down for three lease lengths from the moment the worker starts on the task.
    *blobs.down_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(3));
    let (_shutdown, _worker) = harness.start_worker();
    let task = harness.submit(input, TaskLimits::default()).await;

    harness.events_until_closed(task.id).await;
    let done = harness.get(task.id).await;
    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.message);
    assert!(
        blobs.refused.load(Ordering::SeqCst) > 1,
        "the outage was never met, or met once"
    );
    assert_eq!(done.attempt, 1, "an outage is no failed attempt");
}
