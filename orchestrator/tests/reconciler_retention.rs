//! Retention: once a finished task is older than the retention period, the reconciler
//! deletes its files (workspace tarball, outputs with the agent's log, the uploaded zip)
//! and marks the row purged; the row stays, live tasks are untouched, and a purged task
//! is not looked at again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use std::time::Duration;

use orchestrator::reconciler::Step;
use orchestrator::store::Due;
use orchestrator::{InputSource, TaskLimits, TaskStatus};
use worker_support::*;

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_file() {
            found.push(entry.path().display().to_string());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_task_past_retention_loses_its_files_and_keeps_its_row() {
    let data = DataDir::new();
    data.write_agent(
        r#"touch_out agent.log 'the log'
result '{"status":"completed"}'
exit 0"#,
    );
    let harness = Harness::open(test_config(&data, |c| c.reconciler.retention_secs = 1)).await;
    let (_shutdown, _worker) = harness.start_worker();
    let done = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    harness.events_until_closed(done.id).await;
    assert_eq!(harness.get(done.id).await.status, TaskStatus::Completed);
    let InputSource::Zip { zip_key, .. } = &done.input else {
        unreachable!()
    };
    let blobs = data.blob_root();
    let task_dir = blobs.join(format!("tasks/{}", done.id));
    assert!(task_dir.join("outputs/agent.log").is_file());
    assert!(task_dir.join("workspace.tar.gz").is_file());
    assert!(blobs.join(zip_key).is_file());
    // A live task (stored, never run) keeps its upload whatever its age.
    let live_input = harness.upload_zip(&[("b.txt", "b")]).await;
    let live = harness
        .create(live_input.clone(), TaskLimits::default())
        .await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = harness.reconciler().pass().await;
    assert_eq!(report.steps_for(done.id), vec![&Step::Purged], "{report:?}");
    assert!(
        report
            .steps_for(live.id)
            .iter()
            .all(|s| **s != Step::Purged)
    );
    assert!(!task_dir.exists(), "left: {:?}", files_under(&task_dir));
    assert!(!blobs.join(zip_key).exists(), "the upload was kept");
    let InputSource::Zip {
        zip_key: live_key, ..
    } = &live_input
    else {
        unreachable!()
    };
    assert!(
        blobs.join(live_key).is_file(),
        "a live task's upload was deleted"
    );
    let row = harness.get(done.id).await;
    assert_eq!(row.status, TaskStatus::Completed, "the row stays");

    // Purged once: it is out of the query, and the next pass leaves it alone.
    let expired = harness
        .services
        .store
        .due(
            Due::Expired {
                older_than: Duration::ZERO,
            },
            10,
        )
        .await
        .unwrap();
    assert!(!expired.contains(&done.id));
    let again = harness.reconciler().pass().await;
    assert!(again.steps_for(done.id).is_empty(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_retention_off_nothing_is_deleted() {
    let data = DataDir::new();
    data.write_agent(r#"result '{"status":"completed"}'; exit 0"#);
    let harness = Harness::open(test_config(&data, |c| c.reconciler.retention_secs = 0)).await;
    let (_shutdown, _worker) = harness.start_worker();
    let done = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    harness.events_until_closed(done.id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = harness.reconciler().pass().await;
    assert!(report.steps_for(done.id).is_empty(), "{report:?}");
    assert!(
        data.blob_root()
            .join(format!("tasks/{}/workspace.tar.gz", done.id))
            .is_file()
    );
}
