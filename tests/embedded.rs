//! The end-to-end cases on the embedded profile: one `api` process on SQLite, the
//! in-process queue, the local blob folder and the memory cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::{Profile, cases};

#[tokio::test(flavor = "multi_thread")]
async fn zip_task_completes_and_its_events_replay() {
    cases::zip_task_completes_and_its_events_replay(Profile::Embedded).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn git_task_completes_with_a_diff() {
    cases::git_task_completes_with_a_diff(Profile::Embedded).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_task_kills_its_agent() {
    cases::cancelling_a_running_task_kills_its_agent(Profile::Embedded).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_creates_are_refused_and_leave_nothing() {
    cases::hostile_creates_are_refused_and_leave_nothing(Profile::Embedded).await;
}
