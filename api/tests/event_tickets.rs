//! Event tickets: a browser's `EventSource` follows one task's events with a short-lived
//! ticket instead of the API token, and the ticket opens nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use orchestrator::{StatusCache, TaskId};
use serde_json::{Value, json};
use support::{ALICE, BOB, Harness, SseReader, test_config};

async fn ticket(h: &Harness, id: &str, token: &str) -> reqwest::Response {
    h.http
        .post(h.url(&format!("/api/v1/tasks/{id}/events/ticket")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn ticket_of(h: &Harness, id: &str) -> String {
    let response = ticket(h, id, ALICE).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["ticket"].as_str().unwrap().to_string()
}

async fn events_with(h: &Harness, id: &str, query: &str) -> reqwest::Response {
    h.http
        .get(h.url(&format!("/api/v1/tasks/{id}/events?{query}")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_ticket_opens_its_tasks_event_stream_without_the_token() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let task_id: TaskId = id.parse().unwrap();
    h.cache
        .publish(task_id, json!({"type": "task_started"}))
        .await
        .unwrap();
    h.cache.close(task_id).await.unwrap();

    let ticket = ticket_of(&h, &id).await;
    assert!(!ticket.contains(ALICE));
    let response = events_with(&h, &id, &format!("ticket={ticket}")).await;
    assert_eq!(response.status(), 200);
    let events = SseReader::new(response).collect().await;
    let types: Vec<_> = events.iter().map(|e| e.data["type"].clone()).collect();
    assert_eq!(types, [json!("status"), json!("task_started")]);

    // `last_event_id` resumes after an event, for a new EventSource (no header).
    let response = events_with(&h, &id, &format!("ticket={ticket}&last_event_id=0")).await;
    let events = SseReader::new(response).collect().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["type"], "task_started");
}

#[tokio::test]
async fn a_ticket_is_refused_for_another_task_and_on_every_other_route() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    let other = h.create_git_task().await;
    let ticket = ticket_of(&h, &id).await;

    let response = events_with(&h, &other, &format!("ticket={ticket}")).await;
    assert_eq!(response.status(), 401);
    for path in [
        format!("/api/v1/tasks/{id}?ticket={ticket}"),
        format!("/api/v1/tasks?ticket={ticket}"),
        format!("/api/v1/tasks/{id}/artifacts/diff.patch?ticket={ticket}"),
    ] {
        let response = h.http.get(h.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    let response = h
        .http
        .post(h.url(&format!("/api/v1/tasks/{id}/cancel?ticket={ticket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    for junk in ["", "x", "99999999999.AAAA", &ticket[..ticket.len() - 2]] {
        let response = events_with(&h, &id, &format!("ticket={junk}")).await;
        assert_eq!(response.status(), 401, "{junk:?}");
    }
}

#[tokio::test]
async fn tickets_are_only_issued_to_the_tasks_owner() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    assert_eq!(ticket(&h, &id, BOB).await.status(), 404);
    assert_eq!(ticket(&h, &id, "nobody").await.status(), 401);
    let response = h
        .http
        .post(h.url(&format!("/api/v1/tasks/{id}/events/ticket")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_ticket_stops_opening_the_stream_a_minute_after_it_was_issued() {
    let now = Arc::new(AtomicI64::new(1_900_000_000));
    let clock = now.clone();
    let h = Harness::start_with(
        test_config(),
        Some(Arc::new(move || clock.load(Ordering::SeqCst))),
    )
    .await;
    let id = h.create_git_task().await;
    let response = ticket(&h, &id, ALICE).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_at"], (1_900_000_000i64 + 60) * 1000);
    let ticket = body["ticket"].as_str().unwrap().to_string();

    now.store(1_900_000_060, Ordering::SeqCst);
    let response = events_with(&h, &id, &format!("ticket={ticket}")).await;
    assert_eq!(response.status(), 200, "still valid at its expiry second");
    drop(response);
    now.store(1_900_000_061, Ordering::SeqCst);
    let response = events_with(&h, &id, &format!("ticket={ticket}")).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_ticket_route_is_in_the_openapi_document() {
    let h = Harness::start().await;
    let doc: Value = h
        .http
        .get(h.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/tasks/{id}/events/ticket"]["post"].is_object());
    let params = doc["paths"]["/api/v1/tasks/{id}/events"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let names: Vec<_> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"ticket") && names.contains(&"last_event_id"),
        "{names:?}"
    );
}
