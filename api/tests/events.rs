//! SSE: a late reader gets the history then the live tail; `Last-Event-ID` resumes;
//! the stream ends when the task's stream is closed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use orchestrator::{StatusCache, TaskId};
use serde_json::json;
use support::{ALICE, Harness, SseReader};

async fn open(h: &Harness, id: &str, last_event_id: Option<&str>) -> SseReader {
    let mut request = h
        .http
        .get(h.url(&format!("/api/v1/tasks/{id}/events")))
        .bearer_auth(ALICE);
    if let Some(last) = last_event_id {
        request = request.header("Last-Event-ID", last);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader::new(response)
}

#[tokio::test]
async fn late_reader_gets_every_event_from_the_start_with_seq_ids() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let task_id: TaskId = id.parse().unwrap();
    h.cache
        .publish(task_id, json!({"type": "task_started"}))
        .await
        .unwrap();
    h.cache
        .publish(task_id, json!({"type": "task_finished"}))
        .await
        .unwrap();
    h.cache.close(task_id).await.unwrap();

    let events = open(&h, &id, None).await.collect().await;
    let types: Vec<_> = events.iter().map(|e| e.data["type"].clone()).collect();
    // The API's own QUEUED status event comes first.
    assert_eq!(
        types,
        [
            json!("status"),
            json!("task_started"),
            json!("task_finished")
        ]
    );
    assert_eq!(events[0].data["status"], "QUEUED");
    let ids: Vec<_> = events.iter().map(|e| e.id.clone().unwrap()).collect();
    assert_eq!(ids, ["0", "1", "2"]);
}

#[tokio::test]
async fn last_event_id_resumes_after_that_event() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let task_id: TaskId = id.parse().unwrap();
    for n in 0..3 {
        h.cache
            .publish(task_id, json!({"type": "message", "n": n}))
            .await
            .unwrap();
    }
    h.cache.close(task_id).await.unwrap();
    let events = open(&h, &id, Some("2")).await.collect().await;
    let ids: Vec<_> = events.iter().map(|e| e.id.clone().unwrap()).collect();
    assert_eq!(ids, ["3"]);
    assert_eq!(events[0].data["n"], 2);
}

#[tokio::test]
async fn live_events_arrive_as_published_and_close_ends_the_stream() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let task_id: TaskId = id.parse().unwrap();
    let mut reader = open(&h, &id, None).await;
    assert_eq!(reader.next().await.unwrap().data["status"], "QUEUED");

    h.cache
        .publish(task_id, json!({"type": "tool_call", "name": "shell"}))
        .await
        .unwrap();
    let live = reader.next().await.unwrap();
    assert_eq!(live.data["name"], "shell");
    assert_eq!(live.id.as_deref(), Some("1"));

    h.cache.close(task_id).await.unwrap();
    assert_eq!(reader.next().await, None);
}

#[tokio::test]
async fn cancel_ends_an_open_stream_with_the_cancelled_status() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let mut reader = open(&h, &id, None).await;
    assert_eq!(reader.next().await.unwrap().data["status"], "QUEUED");
    let cancelled = h
        .http
        .post(h.url(&format!("/api/v1/tasks/{id}/cancel")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    assert_eq!(reader.next().await.unwrap().data["status"], "CANCELLED");
    assert_eq!(reader.next().await, None);
}

#[tokio::test]
async fn bad_last_event_id_is_a_400() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let response = h
        .http
        .get(h.url(&format!("/api/v1/tasks/{id}/events")))
        .bearer_auth(ALICE)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    support::expect_error(response, 400).await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_so_the_server_drains() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let mut reader = open(&h, &id, None).await;
    assert_eq!(reader.next().await.unwrap().data["status"], "QUEUED");
    let stopping = tokio::spawn(h.stop());
    assert_eq!(reader.next().await, None);
    stopping.await.unwrap();
}
