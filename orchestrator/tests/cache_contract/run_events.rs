//! A run's events go in once: a worker that re-attaches to a run replays it from the
//! start, and the stream must not show the replayed events twice.

use orchestrator::{RunEvent, TaskId};
use serde_json::{Value, json};

use super::{CacheFixture, collect_ok};

fn run_events(indexes: std::ops::Range<u64>) -> Vec<RunEvent> {
    indexes
        .map(|index| RunEvent {
            index,
            data: json!({"n": index}),
        })
        .collect()
}

async fn story(fx: &CacheFixture, id: TaskId) -> Vec<Value> {
    fx.cache.close(id).await.unwrap();
    let events = collect_ok(fx.cache.subscribe(id, 0).await.unwrap()).await;
    events.into_iter().map(|event| event.data).collect()
}

pub async fn a_replayed_run_adds_only_the_events_not_yet_taken(fx: CacheFixture) {
    let id = TaskId::new();
    let first = fx
        .cache
        .publish_run_events(id, "run-1", run_events(0..3))
        .await
        .unwrap();
    assert_eq!(first, 0..3);
    fx.cache.publish(id, json!("status")).await.unwrap();
    // Another process re-attached: it replays the run from its start, and goes further.
    let replay = fx
        .other
        .publish_run_events(id, "run-1", run_events(0..5))
        .await
        .unwrap();
    assert_eq!(replay, 4..6, "only events 3 and 4 are new");
    let again = fx
        .cache
        .publish_run_events(id, "run-1", run_events(0..5))
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    // A gap (events dropped on the way) is no replay: what comes after it goes in.
    let gap = fx
        .cache
        .publish_run_events(id, "run-1", run_events(7..8))
        .await
        .unwrap();
    assert_eq!(gap, 6..7);
    assert_eq!(
        story(&fx, id).await,
        [
            json!({"n": 0}),
            json!({"n": 1}),
            json!({"n": 2}),
            json!("status"),
            json!({"n": 3}),
            json!({"n": 4}),
            json!({"n": 7}),
        ]
    );
}

pub async fn each_run_keeps_its_own_mark(fx: CacheFixture) {
    let id = TaskId::new();
    fx.cache
        .publish_run_events(id, "agent-x-1", run_events(0..2))
        .await
        .unwrap();
    // The next attempt's run starts its own numbering on the same stream.
    let next = fx
        .cache
        .publish_run_events(id, "agent-x-2", run_events(0..1))
        .await
        .unwrap();
    assert_eq!(next, 2..3);
    let empty = fx
        .cache
        .publish_run_events(id, "agent-x-1", Vec::new())
        .await
        .unwrap();
    assert!(empty.is_empty(), "{empty:?}");
    assert_eq!(story(&fx, id).await.len(), 3);
}

/// Two workers watch one run for a moment (one lost its lease, the other took over):
/// both replay it in batches at once, and every event is in the stream once, in order.
pub async fn two_clients_replaying_one_run_at_once_add_each_event_once(fx: CacheFixture) {
    const EVENTS: u64 = 120;
    const BATCH: u64 = 7;
    let id = TaskId::new();
    let replays: Vec<_> = [fx.cache.clone(), fx.other.clone()]
        .into_iter()
        .map(|cache| {
            tokio::spawn(async move {
                let mut start = 0;
                while start < EVENTS {
                    let end = (start + BATCH).min(EVENTS);
                    cache
                        .publish_run_events(id, "run", run_events(start..end))
                        .await
                        .unwrap();
                    start = end;
                }
            })
        })
        .collect();
    for replay in replays {
        replay.await.unwrap();
    }
    let expected: Vec<Value> = (0..EVENTS).map(|n| json!({"n": n})).collect();
    assert_eq!(story(&fx, id).await, expected);
}
