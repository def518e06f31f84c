//! `GET /api/v1/tasks/updates`: an owner's tasks as they change, over SSE. A snapshot
//! first, then new and changed tasks, never another owner's; a ticket for `EventSource`
//! that opens this stream and nothing else; the store carries on when the cache fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use orchestrator::cache::{CacheError, EventStream, RunEvent, WindowHits};
use orchestrator::tasks::announce;
use orchestrator::{StatusCache, TaskId, TaskStatus, TaskStore, TaskUpdate};
use serde_json::{Value, json};
use support::{ALICE, BOB, Harness, SseEvent, SseReader, test_config};

/// Long enough for a loaded machine; a healthy stream answers within a few seconds.
const WAIT: Duration = Duration::from_secs(20);

async fn open(h: &Harness, query: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = h.http.get(h.url(&format!("/api/v1/tasks/updates?{query}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn stream(h: &Harness, token: &str) -> SseReader {
    let response = open(h, "", Some(token)).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader::new(response)
}

async fn next(reader: &mut SseReader) -> SseEvent {
    tokio::time::timeout(WAIT, reader.next())
        .await
        .expect("no event in time")
        .expect("the stream ended")
}

/// Reads events until one satisfies `wanted`; returns it and every event before it.
async fn until(reader: &mut SseReader, wanted: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let event = next(reader).await.data;
        if wanted(&event) {
            return (event, before);
        }
        before.push(event);
    }
}

fn is_task(id: &str, status: &str) -> impl Fn(&Value) -> bool {
    move |event| {
        event["type"] == "task" && event["task"]["id"] == id && event["task"]["status"] == status
    }
}

async fn create_as(h: &Harness, token: &str, description: &str) -> String {
    let response = h
        .http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(token)
        .json(&json!({"git_url": "https://140.82.112.3/org/repo.git", "description": description}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

/// What a worker does at a status move: the row first, then the cache.
async fn advance(h: &Harness, id: &str, from: TaskStatus, to: TaskStatus) {
    let id: TaskId = id.parse().unwrap();
    h.store
        .transition(id, from, to, TaskUpdate::default())
        .await
        .unwrap();
    announce(h.cache.as_ref(), id, to, None).await;
}

#[tokio::test]
async fn a_snapshot_then_new_and_changed_tasks_of_the_owner_only() {
    let h = Harness::start().await;
    let first = create_as(&h, ALICE, "first").await;
    create_as(&h, BOB, "bob's").await;

    let mut updates = stream(&h, ALICE).await;
    let snapshot = next(&mut updates).await.data;
    assert_eq!(snapshot["type"], "snapshot");
    let tasks = snapshot["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{snapshot}");
    assert_eq!(tasks[0]["id"], first.as_str());
    assert_eq!(tasks[0]["status"], "QUEUED");

    // A new task (created anywhere: only the store knows of it) appears...
    create_as(&h, BOB, "bob's second").await;
    let second = create_as(&h, ALICE, "second").await;
    let (event, before) = until(&mut updates, is_task(&second, "QUEUED")).await;
    assert_eq!(event["task"]["description"], "second");
    assert_eq!(before, Vec::<Value>::new(), "nothing else was new");

    // ...and so does each status move of a watched task, to its end.
    advance(&h, &first, TaskStatus::Queued, TaskStatus::Processing).await;
    let (_, before) = until(&mut updates, is_task(&first, "PROCESSING")).await;
    assert_eq!(before, Vec::<Value>::new());
    advance(&h, &first, TaskStatus::Processing, TaskStatus::Failed).await;
    until(&mut updates, is_task(&first, "FAILED")).await;

    // Bob's tasks never showed; a change is sent once.
    advance(&h, &second, TaskStatus::Queued, TaskStatus::Cancelled).await;
    let (_, before) = until(&mut updates, is_task(&second, "CANCELLED")).await;
    assert_eq!(before, Vec::<Value>::new(), "a change was sent twice");
    let quiet = tokio::time::timeout(Duration::from_secs(5), updates.next()).await;
    assert!(quiet.is_err(), "an event without a change: {quiet:?}");
}

#[tokio::test]
async fn a_live_task_pushed_off_the_first_page_is_still_followed() {
    let h = Harness::start().await;
    let old = create_as(&h, ALICE, "old").await;
    let response = open(&h, "limit=1", Some(ALICE)).await;
    assert_eq!(response.status(), 200);
    let mut updates = SseReader::new(response);
    assert_eq!(
        next(&mut updates).await.data["tasks"][0]["id"],
        old.as_str()
    );

    let new = create_as(&h, ALICE, "new").await;
    until(&mut updates, is_task(&new, "QUEUED")).await;
    advance(&h, &old, TaskStatus::Queued, TaskStatus::Processing).await;
    until(&mut updates, is_task(&old, "PROCESSING")).await;
}

/// The embedded memory cache, made to fail on demand.
struct FlakyCache {
    inner: Arc<dyn StatusCache>,
    down: Arc<AtomicBool>,
}

impl FlakyCache {
    fn check(&self) -> Result<(), CacheError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(CacheError::Timeout {
                context: "test".into(),
                after: Duration::from_millis(1),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl StatusCache for FlakyCache {
    async fn set_status(&self, id: TaskId, status: TaskStatus) -> Result<(), CacheError> {
        self.check()?;
        self.inner.set_status(id, status).await
    }
    async fn status(&self, id: TaskId) -> Result<Option<TaskStatus>, CacheError> {
        self.check()?;
        self.inner.status(id).await
    }
    async fn publish_batch(
        &self,
        id: TaskId,
        events: Vec<Value>,
    ) -> Result<Range<u64>, CacheError> {
        self.check()?;
        self.inner.publish_batch(id, events).await
    }
    async fn subscribe(&self, id: TaskId, from_seq: u64) -> Result<EventStream, CacheError> {
        self.check()?;
        self.inner.subscribe(id, from_seq).await
    }
    async fn close(&self, id: TaskId) -> Result<(), CacheError> {
        self.check()?;
        self.inner.close(id).await
    }
    async fn publish_run_events(
        &self,
        id: TaskId,
        run: &str,
        events: Vec<RunEvent>,
    ) -> Result<Range<u64>, CacheError> {
        self.check()?;
        self.inner.publish_run_events(id, run, events).await
    }
    async fn count_hit(&self, key: &str, window: Duration) -> Result<WindowHits, CacheError> {
        self.check()?;
        self.inner.count_hit(key, window).await
    }
}

#[tokio::test]
async fn when_the_cache_fails_changes_come_from_the_store_until_it_is_back() {
    let down = Arc::new(AtomicBool::new(false));
    let switch = down.clone();
    let h = Harness::start_wrapped(test_config(), None, move |services| {
        services.cache = Arc::new(FlakyCache {
            inner: services.cache.clone(),
            down: switch,
        });
    })
    .await;
    let id = create_as(&h, ALICE, "watched").await;
    let mut updates = stream(&h, ALICE).await;
    assert_eq!(next(&mut updates).await.data["type"], "snapshot");

    down.store(true, Ordering::SeqCst);
    let (degraded, _) = until(&mut updates, |e| e["type"] == "degraded").await;
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("status cache"),
        "{degraded}"
    );
    // The move reaches only the store (the worker's cache write fails too).
    let task_id: TaskId = id.parse().unwrap();
    h.store
        .transition(
            task_id,
            TaskStatus::Queued,
            TaskStatus::Processing,
            TaskUpdate::default(),
        )
        .await
        .unwrap();
    until(&mut updates, is_task(&id, "PROCESSING")).await;

    down.store(false, Ordering::SeqCst);
    until(&mut updates, |e| e["type"] == "live_restored").await;
    advance(&h, &id, TaskStatus::Processing, TaskStatus::RunningAgent).await;
    until(&mut updates, is_task(&id, "RUNNING_AGENT")).await;
}

async fn updates_ticket(h: &Harness, token: &str) -> reqwest::Response {
    h.http
        .post(h.url("/api/v1/tasks/updates/ticket"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_ticket_opens_the_owners_updates_and_nothing_else() {
    let now = Arc::new(AtomicI64::new(1_900_000_000));
    let clock = now.clone();
    let h = Harness::start_with(
        test_config(),
        Some(Arc::new(move || clock.load(Ordering::SeqCst))),
    )
    .await;
    let id = create_as(&h, ALICE, "mine").await;
    create_as(&h, BOB, "bob's").await;
    let response = updates_ticket(&h, ALICE).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_at"], (1_900_000_000i64 + 60) * 1000);
    let ticket = body["ticket"].as_str().unwrap().to_string();
    assert!(!ticket.contains(ALICE));

    let response = open(&h, &format!("ticket={ticket}"), None).await;
    assert_eq!(response.status(), 200);
    let snapshot = next(&mut SseReader::new(response)).await.data;
    let ids: Vec<_> = snapshot["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [json!(id)], "the ticket's owner's tasks only");

    // Not a key to anything else: the task's events, the list, a task.
    for path in [
        format!("/api/v1/tasks/{id}/events?ticket={ticket}"),
        format!("/api/v1/tasks?ticket={ticket}"),
        format!("/api/v1/tasks/{id}?ticket={ticket}"),
    ] {
        let response = h.http.get(h.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    // Nor does a task's ticket open the updates.
    let response = h
        .http
        .post(h.url(&format!("/api/v1/tasks/{id}/events/ticket")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    let task_ticket: Value = response.json().await.unwrap();
    let task_ticket = task_ticket["ticket"].as_str().unwrap();
    let response = open(&h, &format!("ticket={task_ticket}"), None).await;
    assert_eq!(response.status(), 401);
    for junk in ["", "x", "1.YWxpY2U.AAAA", &ticket[..ticket.len() - 2]] {
        let response = open(&h, &format!("ticket={junk}"), None).await;
        assert_eq!(response.status(), 401, "{junk:?}");
    }

    now.store(1_900_000_061, Ordering::SeqCst);
    let response = open(&h, &format!("ticket={ticket}"), None).await;
    assert_eq!(response.status(), 401, "expired");
}

#[tokio::test]
async fn bad_requests_are_refused_clearly() {
    let h = Harness::start().await;
    support::expect_error(open(&h, "", None).await, 401).await;
    support::expect_error(open(&h, "", Some("nobody")).await, 401).await;
    assert_eq!(updates_ticket(&h, "nobody").await.status(), 401);
    for limit in ["0", "101", "many"] {
        let (_, message) =
            support::expect_error(open(&h, &format!("limit={limit}"), Some(ALICE)).await, 422)
                .await;
        assert!(message.contains("limit"), "{limit}: {message}");
    }
}

#[tokio::test]
async fn the_stream_and_its_ticket_are_in_the_openapi_document() {
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
    let get = &doc["paths"]["/api/v1/tasks/updates"]["get"];
    assert!(
        get["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{get}"
    );
    let names: Vec<_> = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["limit", "ticket"]);
    assert!(doc["paths"]["/api/v1/tasks/updates/ticket"]["post"].is_object());
}
