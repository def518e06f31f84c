//! Status, and the numbers events get: from 0, gapless, in order, whoever publishes.

use std::collections::HashMap;

use orchestrator::{TaskId, TaskStatus};
use serde_json::json;

use super::{CacheFixture, collect_ok, seqs};

pub async fn status_is_the_latest_one_set_and_none_before(fx: CacheFixture) {
    let id = TaskId::new();
    assert_eq!(fx.cache.status(id).await.unwrap(), None);
    fx.cache.set_status(id, TaskStatus::Queued).await.unwrap();
    fx.other
        .set_status(id, TaskStatus::RunningAgent)
        .await
        .unwrap();
    assert_eq!(
        fx.cache.status(id).await.unwrap(),
        Some(TaskStatus::RunningAgent)
    );
}

pub async fn publish_numbers_a_tasks_events_from_zero(fx: CacheFixture) {
    let (a, b) = (TaskId::new(), TaskId::new());
    for expected in 0..3 {
        assert_eq!(
            fx.cache.publish(a, json!({"n": expected})).await.unwrap(),
            expected
        );
    }
    assert_eq!(fx.cache.publish(b, json!("b")).await.unwrap(), 0);
}

pub async fn a_batch_gets_contiguous_numbers_in_its_order(fx: CacheFixture) {
    let id = TaskId::new();
    fx.cache.publish(id, json!("first")).await.unwrap();
    let range = fx
        .cache
        .publish_batch(id, vec![json!("a"), json!("b"), json!("c")])
        .await
        .unwrap();
    assert_eq!(range, 1..4);
    let empty = fx.cache.publish_batch(id, Vec::new()).await.unwrap();
    assert!(empty.is_empty(), "{empty:?}");
    fx.cache.close(id).await.unwrap();
    let events = collect_ok(fx.cache.subscribe(id, 0).await.unwrap()).await;
    let data: Vec<_> = events.iter().map(|e| e.data.clone()).collect();
    assert_eq!(data, [json!("first"), json!("a"), json!("b"), json!("c")]);
}

/// Several processes publish to one task (the worker's events, the API's cancel): the
/// cache hands out the numbers, so they never collide or leave holes.
pub async fn concurrent_publishers_on_two_clients_get_gapless_numbers(fx: CacheFixture) {
    const PUBLISHERS: u64 = 8;
    const BATCHES: u64 = 25;
    const PER_BATCH: u64 = 3;
    let id = TaskId::new();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let cache = if p % 2 == 0 {
                fx.cache.clone()
            } else {
                fx.other.clone()
            };
            tokio::spawn(async move {
                let mut ranges = Vec::new();
                for b in 0..BATCHES {
                    let events = (0..PER_BATCH)
                        .map(|i| json!({"publisher": p, "n": b * PER_BATCH + i}))
                        .collect();
                    ranges.push(cache.publish_batch(id, events).await.unwrap());
                }
                ranges
            })
        })
        .collect();
    let mut starts = Vec::new();
    for publisher in publishers {
        for range in publisher.await.unwrap() {
            assert_eq!(range.end - range.start, PER_BATCH, "{range:?}");
            starts.push(range.start);
        }
    }
    starts.sort_unstable();
    let expected: Vec<u64> = (0..PUBLISHERS * BATCHES).map(|b| b * PER_BATCH).collect();
    assert_eq!(starts, expected, "batches overlap or leave holes");
    fx.cache.close(id).await.unwrap();
    let events = collect_ok(fx.other.subscribe(id, 0).await.unwrap()).await;
    let total = PUBLISHERS * BATCHES * PER_BATCH;
    assert_eq!(seqs(&events), (0..total).collect::<Vec<_>>());
    // Each publisher's events keep its own order.
    let mut last: HashMap<u64, i64> = HashMap::new();
    for event in &events {
        let publisher = event.data["publisher"].as_u64().unwrap();
        let n = event.data["n"].as_i64().unwrap();
        let previous = last.insert(publisher, n).unwrap_or(-1);
        assert!(n > previous, "publisher {publisher}: {n} after {previous}");
    }
}
