//! The end-to-end cases on the cluster profile: MariaDB, Redis, a Kafka broker (tansu)
//! and an S3 server (s3s-fs) from `scripts/services`, each test on a database, a Redis
//! key prefix, topics, a consumer group and a model of its own; agents run as local
//! processes. A service that cannot be reached fails the test; it never skips.
//!
//! Beyond the shared cases, what the profile is for: two API processes and two worker
//! processes on the same services, a task submitted to one API replica followed over SSE
//! on the other, claimed once and run once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::{Profile, Stack, cases};
use serde_json::json;
use test_support::{CALC_PY, SseEvent, agent_runs, apply_to_original, fix_add_steps, zip_of};

#[tokio::test(flavor = "multi_thread")]
async fn zip_task_completes_and_its_events_replay() {
    cases::zip_task_completes_and_its_events_replay(Profile::Cluster).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn git_task_completes_with_a_diff() {
    cases::git_task_completes_with_a_diff(Profile::Cluster).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_task_kills_its_agent() {
    cases::cancelling_a_running_task_kills_its_agent(Profile::Cluster).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_creates_are_refused_and_leave_nothing() {
    cases::hostile_creates_are_refused_and_leave_nothing(Profile::Cluster).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_api_and_two_worker_processes_run_a_task_once_followed_on_the_other_replica() {
    let mut stack = Stack::configured(
        Profile::Cluster,
        json!(fix_add_steps()),
        "",
        Default::default(),
    )
    .await;
    for _ in 0..2 {
        let api = stack.launch(&["--role", "api"]).await;
        stack.apis.push(api);
        let worker = stack.launch(&["--role", "worker"]).await;
        stack.workers.push(worker);
    }
    let (first, second) = (&stack.apis[0], &stack.apis[1]);
    let files = [("calc.py", CALC_PY)];

    let id = first
        .created_id(first.submit_zip(zip_of(&files), "fix add").await)
        .await;
    // Followed on the replica that did not take the submission.
    let events = second.follow_events(&id).await;
    assert_eq!(
        events.last().unwrap().data["status"],
        "COMPLETED",
        "{events:?}"
    );
    let kinds: Vec<&str> = events.iter().map(SseEvent::kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "task_started").count(),
        1,
        "one run: {kinds:?}"
    );
    assert!(kinds.contains(&"task_finished"), "{kinds:?}");
    let task = second.task(&id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["attempt"], 1, "claimed once: {task}");
    let diff = first.artifact(&id, "diff.patch").await;
    assert_eq!(
        apply_to_original(&files, &diff),
        "def add(a, b):\n    return a + b\n"
    );
    assert_eq!(agent_runs(&stack.model), 1, "the agent ran once");
}
