//! Health, readiness, metrics and the OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::readiness::{PROBE_TIMEOUT, Readiness};
use async_trait::async_trait;
use orchestrator::cache::{RedisCacheConfig, RedisStatusCache};
use orchestrator::health::Health;
use orchestrator::{Delivery, Queue, QueueError, StatusCache, TaskMessage};
use serde_json::Value;
use support::Harness;

#[tokio::test]
async fn healthz_and_readyz_answer_without_auth() {
    let h = Harness::start().await;
    for path in ["/healthz", "/readyz"] {
        let response = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn readyz_is_503_when_the_store_is_gone() {
    let h = Harness::start().await;
    h.store.close().await;
    let response = h.http.get(h.url("/readyz")).send().await.unwrap();
    support::expect_error(response, 503).await;
}

#[tokio::test]
async fn readyz_is_ready_but_degraded_when_the_status_cache_is_down() {
    // A Redis cache on a port nothing listens on: every call fails at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisCacheConfig::from_url(format!("redis://127.0.0.1:{port}"));
    let cache: Arc<dyn StatusCache> = Arc::new(RedisStatusCache::new(config).unwrap());
    let h = Harness::start_wrapped(support::test_config(), None, move |services| {
        services.cache = cache;
    })
    .await;
    let response = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "the store is the truth: still ready"
    );
    let body = response.text().await.unwrap();
    assert!(body.starts_with("ready (degraded: "), "{body}");
    assert!(body.contains("status cache"), "{body}");

    let healthy = Harness::start().await;
    let response = healthy
        .http
        .get(healthy.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ready");
}

/// A queue whose backend is down (every call fails) or hangs (no call ever answers).
struct BrokenQueue {
    hangs: bool,
}

#[async_trait]
impl Queue for BrokenQueue {
    async fn enqueue(&self, _message: TaskMessage) -> Result<(), QueueError> {
        self.fail().await
    }

    async fn receive(&self) -> Result<Delivery, QueueError> {
        std::future::pending().await
    }

    async fn ping(&self, _within: Duration) -> Result<(), QueueError> {
        self.fail().await
    }
}

impl BrokenQueue {
    async fn fail(&self) -> Result<(), QueueError> {
        if self.hangs {
            std::future::pending::<()>().await;
        }
        Err(QueueError::Unavailable {
            context: "metadata".into(),
            source: "broker unreachable (injected)".into(),
        })
    }
}

/// A harness whose `/readyz` checks what a process of `role` checks, on `queue`.
async fn role_harness(runs_agents: bool, queue: Option<Arc<dyn Queue>>) -> (Harness, Arc<Health>) {
    let health = Arc::new(Health::default());
    let readiness = Readiness {
        health: runs_agents.then(|| health.clone()),
        reconcile_interval: Duration::from_secs(5),
        ..Readiness::default()
    };
    let h = Harness::start_shaped(
        support::test_config(),
        None,
        move |services| {
            if let Some(queue) = queue {
                services.queue = Some(queue);
            }
        },
        move |state| state.readiness = readiness,
    )
    .await;
    (h, health)
}

#[tokio::test]
async fn an_api_process_whose_queue_is_down_is_ready_but_degraded() {
    let (h, _) = role_harness(false, Some(Arc::new(BrokenQueue { hangs: false }))).await;
    let response = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200, "new tasks wait in the outbox");
    let body = response.text().await.unwrap();
    assert!(body.starts_with("ready (degraded: "), "{body}");
    assert!(body.contains("queue is unreachable"), "{body}");
}

#[tokio::test]
async fn a_worker_process_needs_its_queue() {
    let (healthy, health) = role_harness(true, None).await;
    let _loop = health.loop_started();
    let response = healthy
        .http
        .get(healthy.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ready");

    let (h, health) = role_harness(true, Some(Arc::new(BrokenQueue { hangs: false }))).await;
    let _loop = health.loop_started();
    let response = h.http.get(h.url("/readyz")).send().await.unwrap();
    let (_, message) = support::expect_error(response, 503).await;
    assert!(message.contains("queue is unreachable"), "{message}");
}

#[tokio::test]
async fn a_queue_that_hangs_fails_the_probe_in_bounded_time() {
    let (h, health) = role_harness(true, Some(Arc::new(BrokenQueue { hangs: true }))).await;
    let _loop = health.loop_started();
    let asked = Instant::now();
    let response = h.http.get(h.url("/readyz")).send().await.unwrap();
    support::expect_error(response, 503).await;
    assert!(
        asked.elapsed() < PROBE_TIMEOUT + Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn a_worker_process_whose_loops_died_is_not_ready() {
    let (h, _health) = role_harness(true, None).await;
    let response = h.http.get(h.url("/readyz")).send().await.unwrap();
    let (_, message) = support::expect_error(response, 503).await;
    assert!(message.contains("worker loop"), "{message}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_tasks() {
    let h = Harness::start().await;
    let id = h.create_git_task().await;
    h.http
        .get(h.url(&format!("/api/v1/tasks/{id}")))
        .bearer_auth(support::ALICE)
        .send()
        .await
        .unwrap();
    let text = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"api_requests_total{method="GET",route="/api/v1/tasks/{id}",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"api_request_duration_seconds_count{method="POST",route="/api/v1/tasks",status="201"} 1"#),
        "{text}"
    );
    assert!(text.contains("api_tasks_created_total 1"), "{text}");
    assert!(text.contains(r#"api_tasks{status="QUEUED"} 1"#), "{text}");
    assert!(
        text.contains("# TYPE orchestrator_tasks_finished_total counter"),
        "{text}"
    );
}

#[tokio::test]
async fn scrapes_reuse_one_count_of_live_tasks_instead_of_reading_the_store_each_time() {
    let h = Harness::start().await;
    h.create_git_task().await;
    let scrape = || async {
        h.http
            .get(h.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(scrape().await.contains(r#"api_tasks{status="QUEUED"} 1"#));
    // With the store gone, a scrape that read it would lose the gauge.
    h.store.close().await;
    let text = scrape().await;
    assert!(text.contains(r#"api_tasks{status="QUEUED"} 1"#), "{text}");
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
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
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/tasks",
        "/api/v1/tasks/{id}",
        "/api/v1/tasks/{id}/cancel",
        "/api/v1/tasks/{id}/events",
        "/api/v1/tasks/{id}/artifacts/{name}",
        "/api/task",
        "/api/task/{id}/status",
        "/blobs/{key}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(paths["/api/v1/tasks"]["post"].is_object());
    assert!(paths["/api/v1/tasks"]["get"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// A header is text or absent; it has no null. A header declared nullable makes clients
/// (and schemathesis) send the word `null`, which the server rightly refuses.
#[tokio::test]
async fn no_header_parameter_is_declared_nullable() {
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
    let mut headers = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(params) = operation["parameters"].as_array() else {
                continue;
            };
            for param in params.iter().filter(|p| p["in"] == "header") {
                headers += 1;
                let schema_type = &param["schema"]["type"];
                let nullable = schema_type == "null"
                    || schema_type
                        .as_array()
                        .is_some_and(|types| types.iter().any(|t| t == "null"));
                assert!(
                    !nullable,
                    "{method} {path}: header {} is nullable",
                    param["name"]
                );
            }
        }
    }
    assert!(
        headers >= 2,
        "the document declares Idempotency-Key and Last-Event-ID"
    );
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let h = Harness::start().await;
    let response = h.http.get(h.url("/nope")).send().await.unwrap();
    support::expect_error(response, 404).await;
}
