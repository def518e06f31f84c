//! A pull request nobody is opening is taken over by the reconciler: one whose opener
//! died while `OPENING` once it is stale (never before), and one still `REQUESTED`
//! after its task finished (the worker died first). The outcome is stored as the
//! worker's would be, one more try counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use std::time::Duration;

use orchestrator::pr::{PrState, PullRequestAsk};
use orchestrator::reconciler::Step;
use orchestrator::store::Due;
use orchestrator::{InputSource, NewTask, TaskLimits, TaskStatus, TaskStore, TaskUpdate};
use worker_support::*;

const STALE: Duration = Duration::from_secs(1);

fn asking() -> NewTask {
    NewTask {
        pull_request: Some(PullRequestAsk {
            base: None,
            title: None,
            sealed_token: None,
        }),
        ..new_task(
            InputSource::Git {
                git_url: "https://example.com/org/repo.git".into(),
                git_ref: None,
            },
            TaskLimits::default(),
        )
    }
}

/// A task that asked for a pull request, moved straight to FAILED (so opening it is a
/// decision made without any network: skipped, the task did not complete).
async fn failed_task_asking(store: &dyn TaskStore) -> orchestrator::Task {
    let (task, _) = store.create(asking()).await.unwrap();
    store
        .transition(
            task.id,
            TaskStatus::Queued,
            TaskStatus::Failed,
            TaskUpdate::default(),
        )
        .await
        .unwrap();
    task
}

fn pr_steps(report: &orchestrator::reconciler::PassReport, id: orchestrator::TaskId) -> Vec<Step> {
    report
        .steps_for(id)
        .into_iter()
        .filter(|step| matches!(step, Step::PullRequest(_)))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opening_whose_opener_died_is_taken_over_once_stale() {
    let data = DataDir::new();
    let harness = Harness::open(test_config(&data, |c| {
        c.pull_requests.stale_after_secs = STALE.as_secs();
    }))
    .await;
    let store = &harness.store;
    let task = failed_task_asking(store).await;
    // An opener claims it, then dies without recording an outcome.
    let claimed = store.start_pull_request(task.id, STALE).await.unwrap();
    assert_eq!(claimed.unwrap().state, PrState::Opening);

    // Not stale yet: left to its opener.
    let due = store
        .due(Due::PullRequests { stale: STALE }, 100)
        .await
        .unwrap();
    assert!(!due.contains(&task.id));
    let report = harness.reconciler().pass().await;
    assert!(pr_steps(&report, task.id).is_empty(), "{report:?}");
    assert_eq!(
        store.pull_request(task.id).await.unwrap().unwrap().state,
        PrState::Opening
    );

    tokio::time::sleep(STALE + Duration::from_millis(200)).await;
    let report = harness.reconciler().pass().await;
    assert_eq!(
        pr_steps(&report, task.id),
        [Step::PullRequest("SKIPPED".into())],
        "{report:?}"
    );
    let record = store.pull_request(task.id).await.unwrap().unwrap();
    assert_eq!(record.state, PrState::Skipped);
    assert_eq!(
        record.tries, 2,
        "the dead opener's try and the reconciler's"
    );
    assert!(record.error.unwrap().contains("did not complete"));

    // Settled: the next pass leaves it alone.
    let report = harness.reconciler().pass().await;
    assert!(pr_steps(&report, task.id).is_empty(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_left_by_a_worker_that_died_after_the_run_is_opened() {
    let data = DataDir::new();
    let harness = Harness::open(test_config(&data, |c| {
        c.pull_requests.stale_after_secs = STALE.as_secs();
    }))
    .await;
    let store = &harness.store;
    let task = failed_task_asking(store).await;
    // A live task's request waits for its run.
    let (live, _) = store.create(asking()).await.unwrap();
    tokio::time::sleep(STALE + Duration::from_millis(200)).await;
    let report = harness.reconciler().pass().await;
    assert_eq!(
        pr_steps(&report, task.id),
        [Step::PullRequest("SKIPPED".into())],
        "{report:?}"
    );
    assert!(pr_steps(&report, live.id).is_empty(), "{report:?}");
    let record = store.pull_request(live.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.tries), (PrState::Requested, 0));
}
