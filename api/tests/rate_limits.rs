//! Per-owner submission rate limits: 429 with `Retry-After` past the rate, per owner,
//! across the routes that submit; counted in the status cache (memory, and Redis shared
//! by two replicas); and a cache that cannot count lets submissions through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../orchestrator/tests/support/services.rs"]
mod services;
mod support;

use std::sync::Arc;

use orchestrator::StatusCache;
use orchestrator::cache::{RedisCacheConfig, RedisStatusCache};
use serde_json::json;
use support::{ALICE, BOB, Harness, test_config};

fn limited(per_window: u64) -> api::ApiConfig {
    api::ApiConfig {
        submissions_per_window: per_window,
        submission_window_secs: 60,
        ..test_config()
    }
}

async fn submit(h: &Harness, token: &str) -> reqwest::Response {
    h.http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(token)
        .json(&json!({"git_url": "https://140.82.112.3/o/r.git", "description": "x"}))
        .send()
        .await
        .unwrap()
}

async fn assert_limited(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("2 submissions per 60 s"), "{message}");
}

fn rate_counter(outcome: &str) -> u64 {
    orchestrator::metrics::global()
        .counter("orchestrator_rate_limit_total", &[("outcome", outcome)])
}

#[tokio::test]
async fn past_the_rate_an_owner_gets_429_with_retry_after_and_others_do_not() {
    let h = Harness::start_with(limited(2), None).await;
    assert_eq!(submit(&h, ALICE).await.status(), 201);
    // The original form route counts against the same rate.
    let legacy = h
        .http
        .post(h.url("/api/task"))
        .bearer_auth(ALICE)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("git_url=https%3A%2F%2F140.82.112.3%2Fo%2Fr.git&task_description=x")
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 200);
    assert_limited(submit(&h, ALICE).await).await;
    assert_eq!(h.tasks_of("alice").await.len(), 2, "nothing stored");
    assert_eq!(submit(&h, BOB).await.status(), 201, "bob has his own rate");
    assert!(rate_counter("limited") >= 1);
}

#[tokio::test]
async fn no_limit_is_applied_by_default() {
    let h = Harness::start().await;
    for _ in 0..5 {
        assert_eq!(submit(&h, ALICE).await.status(), 201);
    }
}

#[tokio::test]
async fn a_cache_that_cannot_count_lets_submissions_through() {
    // A Redis cache on a port nothing listens on: every call fails at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisCacheConfig::from_url(format!("redis://127.0.0.1:{port}"));
    let cache: Arc<dyn StatusCache> = Arc::new(RedisStatusCache::new(config).unwrap());
    let h = Harness::start_wrapped(limited(1), None, move |services| {
        services.cache = cache;
    })
    .await;
    let unchecked = rate_counter("unchecked");
    for _ in 0..3 {
        assert_eq!(submit(&h, ALICE).await.status(), 201, "fail open");
    }
    assert!(rate_counter("unchecked") >= unchecked + 3);
    assert_eq!(h.tasks_of("alice").await.len(), 3);
}

/// Two replicas on one Redis share each owner's count.
#[tokio::test]
async fn replicas_on_one_redis_share_the_count() {
    let config = RedisCacheConfig {
        key_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        ..RedisCacheConfig::from_url(services::redis_url())
    };
    let replica = || {
        let cache = RedisStatusCache::new(config.clone()).unwrap();
        async move {
            if let Err(err) = cache.ping().await {
                services::unreachable("Redis", err);
            }
            let cache: Arc<dyn StatusCache> = Arc::new(cache);
            Harness::start_wrapped(limited(2), None, move |services| {
                services.cache = cache;
            })
            .await
        }
    };
    let (a, b) = (replica().await, replica().await);
    assert_eq!(submit(&a, ALICE).await.status(), 201);
    assert_eq!(submit(&b, ALICE).await.status(), 201);
    assert_limited(submit(&a, ALICE).await).await;
    assert_limited(submit(&b, ALICE).await).await;
    assert_eq!(submit(&b, BOB).await.status(), 201);
}
