//! Submissions that fail halfway: a task stored but not queued is still a created task
//! (201, sent later from the outbox), and a client retrying with its `Idempotency-Key`
//! gets that task back, not a second one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use orchestrator::store::Due;
use orchestrator::{Delivery, Queue, QueueError, TaskMessage, TaskStore};
use serde_json::{Value, json};
use support::{ALICE, Harness, test_config};

/// A queue that is down: every enqueue fails, nothing is ever delivered.
#[derive(Default)]
struct DownQueue {
    tries: AtomicU32,
}

#[async_trait]
impl Queue for DownQueue {
    async fn enqueue(&self, _message: TaskMessage) -> Result<(), QueueError> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        Err(QueueError::Unavailable {
            context: "produce".into(),
            source: "broker unreachable (injected)".into(),
        })
    }

    async fn receive(&self) -> Result<Delivery, QueueError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_task_stored_while_the_queue_is_down_is_created_and_a_retry_finds_it() {
    let queue = Arc::new(DownQueue::default());
    let down = queue.clone();
    let h = Harness::start_wrapped(test_config(), None, move |services| {
        services.queue = Some(down);
    })
    .await;
    let send = || {
        h.http
            .post(h.url("/api/v1/tasks"))
            .bearer_auth(ALICE)
            .header("Idempotency-Key", "retry-me")
            .json(&json!({"git_url": "https://140.82.112.3/org/repo.git", "description": "x"}))
            .send()
    };

    let first = send().await.unwrap();
    assert_eq!(
        first.status(),
        201,
        "a stored task is created, queue or not"
    );
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "QUEUED");
    assert_eq!(queue.tries.load(Ordering::SeqCst), 1);

    // The outbox keeps it for the reconciler (or a worker process) to send.
    let waiting = h
        .store
        .due(
            Due::Outbox {
                older_than: Duration::ZERO,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].to_string(), first["id"].as_str().unwrap());

    // The client retries (say its connection dropped before the answer): same task.
    let again = send().await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(h.tasks_of("alice").await.len(), 1, "no duplicate");
    assert_eq!(queue.tries.load(Ordering::SeqCst), 1, "not queued twice");
}
