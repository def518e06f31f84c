//! `RedisStatusCache` on the loopback Redis of `scripts/services`: the shared cache
//! contract (two clients of one server, as two replicas), and what only Redis adds: the
//! status TTL, keys apart per prefix, and riding out a server that goes away and comes
//! back (on a private server of its own, so stopping it disturbs no other test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache_contract;
#[path = "support/services.rs"]
mod services;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cache_contract::{CacheFixture, cache_contract_tests, collect_ok, next_ok, seqs};
use orchestrator::cache::{RedisCacheConfig, RedisStatusCache};
use orchestrator::{StatusCache, TaskId, TaskStatus};
use serde_json::json;

/// A config on the shared test server under a prefix of its own.
fn config() -> RedisCacheConfig {
    RedisCacheConfig {
        key_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        read_block_ms: 200,
        ..RedisCacheConfig::from_url(services::redis_url())
    }
}

async fn cache(config: RedisCacheConfig) -> RedisStatusCache {
    let cache = RedisStatusCache::new(config).unwrap();
    if let Err(err) = cache.ping().await {
        services::unreachable("Redis", err);
    }
    cache
}

async fn fixture() -> CacheFixture {
    let config = config();
    CacheFixture {
        cache: Arc::new(cache(config.clone()).await),
        other: Arc::new(cache(config).await),
        _keep: Box::new(()),
    }
}

mod contract {
    use super::*;
    cache_contract_tests!(fixture);
}

#[tokio::test]
async fn a_status_expires_after_its_ttl() {
    let cache = cache(RedisCacheConfig {
        status_ttl_secs: 1,
        ..config()
    })
    .await;
    let id = TaskId::new();
    cache.set_status(id, TaskStatus::Processing).await.unwrap();
    assert_eq!(
        cache.status(id).await.unwrap(),
        Some(TaskStatus::Processing)
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(cache.status(id).await.unwrap(), None);
}

#[tokio::test]
async fn deployments_with_other_prefixes_do_not_see_each_other() {
    let (a, b) = (cache(config()).await, cache(config()).await);
    let id = TaskId::new();
    a.set_status(id, TaskStatus::Completed).await.unwrap();
    a.publish(id, json!("a")).await.unwrap();
    assert_eq!(b.status(id).await.unwrap(), None);
    assert_eq!(b.publish(id, json!("b")).await.unwrap(), 0);
}

#[tokio::test]
async fn past_the_cap_old_events_are_trimmed_and_the_gap_shows() {
    let cache = cache(RedisCacheConfig {
        max_events_per_task: 10,
        ..config()
    })
    .await;
    let id = TaskId::new();
    for n in 0..1_000 {
        cache.publish(id, json!(n)).await.unwrap();
    }
    cache.close(id).await.unwrap();
    let events = collect_ok(cache.subscribe(id, 0).await.unwrap()).await;
    let kept = seqs(&events);
    assert!(kept.len() < 1_000 && kept[0] > 0, "{} kept", kept.len());
    assert_eq!(*kept.last().unwrap(), 999);
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1));
}

#[tokio::test]
async fn a_password_in_the_configured_url_is_refused_without_echoing_it() {
    let err = RedisStatusCache::new(RedisCacheConfig {
        url: "redis://:hunter2-secret@127.0.0.1:6379".into(),
        ..RedisCacheConfig::default()
    })
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// A private `redis-server` on a free port, stopped when dropped.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| services::unreachable("redis-server", err));
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the private redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn calls_fail_fast_while_the_server_is_down_and_work_again_when_it_returns() {
    let mut server = PrivateRedis::start();
    let cache = RedisStatusCache::new(RedisCacheConfig {
        read_block_ms: 200,
        ..RedisCacheConfig::from_url(server.url())
    })
    .unwrap();
    let id = TaskId::new();
    cache.publish(id, json!("before")).await.unwrap();
    let mut live = cache.subscribe(id, 0).await.unwrap();
    assert_eq!(next_ok(&mut live).await.data, json!("before"));

    server.stop();
    let started = std::time::Instant::now();
    let err = cache
        .set_status(id, TaskStatus::Processing)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A live reader learns that the cache broke: an error item, then the end.
    let item = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::StreamExt::next(&mut live),
    )
    .await
    .expect("the reader noticed nothing");
    assert!(matches!(item, Some(Err(_))), "{item:?}");

    server.restart();
    // A fresh server (nothing kept): the counter starts again, the cache works again.
    let mut worked = false;
    for _ in 0..50 {
        if cache.set_status(id, TaskStatus::Completed).await.is_ok() {
            worked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(worked, "the cache did not reconnect");
    assert_eq!(cache.status(id).await.unwrap(), Some(TaskStatus::Completed));
}

#[tokio::test]
async fn a_cache_made_while_the_server_is_down_starts_and_connects_later() {
    let mut server = PrivateRedis::start();
    server.stop();
    let cache = RedisStatusCache::new(RedisCacheConfig::from_url(server.url())).unwrap();
    assert!(
        cache
            .status(TaskId::new())
            .await
            .unwrap_err()
            .is_transient()
    );
    server.restart();
    let id = TaskId::new();
    cache.set_status(id, TaskStatus::Queued).await.unwrap();
    assert_eq!(cache.status(id).await.unwrap(), Some(TaskStatus::Queued));
}
