//! A store that blinks (a dropped connection, a deadlock victim, a busy database) does
//! not cost the reconciler its pass: the failing call is tried again with backoff, and
//! the repair happens in the same pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use orchestrator::reconciler::Step;
use orchestrator::{TaskLimits, TaskStatus};
use worker_support::faults::FlakyStore;
use worker_support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_whose_store_blinks_still_relays_the_task() {
    let data = DataDir::new();
    let config = test_config(&data, |config| {
        config.reconciler.pending_after_secs = 0;
        config.reconciler.queued_after_secs = 3600;
    });
    let mut flaky = None;
    let harness = Harness::open_with(config, |services| {
        let store = Arc::new(FlakyStore::new(services.store.clone()));
        flaky = Some(store.clone());
        services.store = store;
    })
    .await;
    let flaky = flaky.unwrap();
    // Stored with its outbox entry, never sent: the reconciler's to relay.
    let task = harness
        .create(
            orchestrator::InputSource::Git {
                git_url: "https://140.82.112.3/o/r.git".into(),
                git_ref: None,
            },
            TaskLimits::default(),
        )
        .await;
    assert_eq!(task.status, TaskStatus::Queued);

    flaky.blinks.store(3, Ordering::SeqCst);
    let report = harness.reconciler().pass().await;
    assert_eq!(
        flaky.blinks.load(Ordering::SeqCst),
        0,
        "the faults were not hit"
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.steps_for(task.id), [&Step::Relayed]);
    // Relayed for good: the next pass finds nothing left.
    let again = harness.reconciler().pass().await;
    assert!(again.steps_for(task.id).is_empty(), "{:?}", again.taken);
}
