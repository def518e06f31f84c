//! `MemoryStatusCache`: the shared cache contract, and what only the memory cache
//! promises: bounds in count and in bytes, closed tasks shed first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache_contract;

use std::sync::Arc;

use cache_contract::{CacheFixture, cache_contract_tests, collect_ok, seqs};
use orchestrator::cache::MemoryCacheLimits;
use orchestrator::{MemoryStatusCache, StatusCache, TaskId, TaskStatus};
use serde_json::json;

async fn fixture() -> CacheFixture {
    let cache = MemoryStatusCache::new();
    CacheFixture {
        cache: Arc::new(cache.clone()),
        other: Arc::new(cache),
        _keep: Box::new(()),
    }
}

mod contract {
    use super::*;
    cache_contract_tests!(fixture);
}

/// An event of roughly `kib` KiB.
fn big_event(kib: usize) -> serde_json::Value {
    json!({"type": "tool_result", "output": "x".repeat(kib * 1024)})
}

#[tokio::test]
async fn a_subscriber_that_reads_nothing_for_a_while_still_gets_every_event() {
    let cache = MemoryStatusCache::new();
    let id = TaskId::new();
    let stream = cache.subscribe(id, 0).await.unwrap();
    for n in 0..5_000 {
        cache.publish(id, json!(n)).await.unwrap();
    }
    cache.close(id).await.unwrap();
    let events = collect_ok(stream).await;
    assert_eq!(seqs(&events), (0..5_000).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e.data == json!(e.seq)));
}

#[tokio::test]
async fn past_the_history_cap_the_newest_are_kept_and_the_gap_shows_in_seq() {
    let cache = MemoryStatusCache::with_limits(MemoryCacheLimits {
        events_per_task: 5,
        ..MemoryCacheLimits::default()
    });
    let id = TaskId::new();
    for n in 0..8 {
        cache.publish(id, json!(n)).await.unwrap();
    }
    cache.close(id).await.unwrap();
    let events = collect_ok(cache.subscribe(id, 0).await.unwrap()).await;
    assert_eq!(seqs(&events), [3, 4, 5, 6, 7]);
}

#[tokio::test]
async fn the_oldest_closed_tasks_are_forgotten_past_the_limit() {
    let cache = MemoryStatusCache::with_limits(MemoryCacheLimits {
        closed_tasks: 2,
        ..MemoryCacheLimits::default()
    });
    let tasks: Vec<TaskId> = (0..3).map(|_| TaskId::new()).collect();
    for &id in &tasks {
        cache.set_status(id, TaskStatus::Completed).await.unwrap();
        cache.publish(id, json!("done")).await.unwrap();
        cache.close(id).await.unwrap();
    }
    assert_eq!(cache.status(tasks[0]).await.unwrap(), None);
    for &id in &tasks[1..] {
        assert_eq!(cache.status(id).await.unwrap(), Some(TaskStatus::Completed));
        let events = collect_ok(cache.subscribe(id, 0).await.unwrap()).await;
        assert_eq!(events.len(), 1);
    }
}

#[tokio::test]
async fn past_the_byte_budget_finished_tasks_are_forgotten_before_running_ones_lose_events() {
    let cache = MemoryStatusCache::with_limits(MemoryCacheLimits {
        max_bytes: 400 * 1024,
        ..MemoryCacheLimits::default()
    });
    let running = TaskId::new();
    for _ in 0..10 {
        cache.publish(running, big_event(10)).await.unwrap();
    }
    let finished: Vec<TaskId> = (0..3).map(|_| TaskId::new()).collect();
    for &id in &finished {
        cache.set_status(id, TaskStatus::Completed).await.unwrap();
        for _ in 0..10 {
            cache.publish(id, big_event(10)).await.unwrap();
        }
        cache.close(id).await.unwrap();
    }
    // The budget holds about 39 such events: 10 more must shed the oldest finished
    // task (and keep the newest), and take nothing from the running one.
    for _ in 0..10 {
        cache.publish(running, big_event(10)).await.unwrap();
    }
    assert!(cache.held_bytes() <= 400 * 1024, "{}", cache.held_bytes());
    assert_eq!(cache.status(finished[0]).await.unwrap(), None);
    assert_eq!(
        cache.status(finished[2]).await.unwrap(),
        Some(TaskStatus::Completed)
    );
    let mut stream = cache.subscribe(running, 0).await.unwrap();
    use futures_util::StreamExt;
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first.seq, 0,
        "the running task lost events while finished ones were held"
    );
}

#[tokio::test]
async fn a_running_history_over_the_byte_budget_loses_its_oldest_events() {
    let cache = MemoryStatusCache::with_limits(MemoryCacheLimits {
        max_bytes: 100 * 1024,
        ..MemoryCacheLimits::default()
    });
    let (small, large) = (TaskId::new(), TaskId::new());
    cache.publish(small, big_event(5)).await.unwrap();
    for _ in 0..30 {
        cache.publish(large, big_event(10)).await.unwrap();
    }
    assert!(cache.held_bytes() <= 100 * 1024, "{}", cache.held_bytes());
    cache.close(large).await.unwrap();
    cache.close(small).await.unwrap();
    let kept = collect_ok(cache.subscribe(large, 0).await.unwrap()).await;
    let kept_seqs = seqs(&kept);
    assert!(
        !kept.is_empty() && kept.len() < 30,
        "kept {} events",
        kept.len()
    );
    assert_eq!(*kept_seqs.last().unwrap(), 29, "the newest events are kept");
    assert!(kept_seqs.windows(2).all(|w| w[1] == w[0] + 1));
    // The largest history paid; the small one kept its event.
    assert_eq!(
        collect_ok(cache.subscribe(small, 0).await.unwrap())
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn many_finished_tasks_stay_within_the_byte_budget() {
    let budget = 1 << 20;
    let cache = MemoryStatusCache::with_limits(MemoryCacheLimits {
        max_bytes: budget,
        ..MemoryCacheLimits::default()
    });
    for _ in 0..200 {
        let id = TaskId::new();
        for _ in 0..5 {
            cache.publish(id, big_event(4)).await.unwrap();
        }
        cache.close(id).await.unwrap();
        assert!(cache.held_bytes() <= budget, "{}", cache.held_bytes());
    }
    assert!(cache.held_bytes() > budget / 2, "{}", cache.held_bytes());
}

#[tokio::test]
async fn a_subscriber_to_a_forgotten_task_ends_instead_of_waiting() {
    let cache = MemoryStatusCache::with_limits(MemoryCacheLimits {
        closed_tasks: 1,
        ..MemoryCacheLimits::default()
    });
    let (first, second) = (TaskId::new(), TaskId::new());
    cache.publish(first, json!("a")).await.unwrap();
    let stream = cache.subscribe(first, 0).await.unwrap();
    cache.close(first).await.unwrap();
    cache.close(second).await.unwrap();
    // `first` is forgotten (history too) before its subscriber read anything.
    assert!(collect_ok(stream).await.is_empty());
}
