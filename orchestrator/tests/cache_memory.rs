//! `MemoryStatusCache`: latest status, replay for late readers, live tail without gaps or
//! duplicates, and streams that end when the task closes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::{FutureExt, StreamExt};
use orchestrator::cache::MemoryCacheLimits;
use orchestrator::{MemoryStatusCache, StatusCache, TaskId, TaskStatus};
use serde_json::json;

fn seqs(events: &[orchestrator::TaskEvent]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

#[tokio::test]
async fn status_is_the_latest_one_set() {
    let cache = MemoryStatusCache::new();
    let id = TaskId::new();
    assert_eq!(cache.status(id).await.unwrap(), None);
    cache.set_status(id, TaskStatus::Queued).await.unwrap();
    cache
        .set_status(id, TaskStatus::RunningAgent)
        .await
        .unwrap();
    assert_eq!(
        cache.status(id).await.unwrap(),
        Some(TaskStatus::RunningAgent)
    );
}

#[tokio::test]
async fn publish_numbers_events_from_zero() {
    let cache = MemoryStatusCache::new();
    let id = TaskId::new();
    for expected in 0..3 {
        assert_eq!(
            cache.publish(id, json!({"n": expected})).await.unwrap(),
            expected
        );
    }
}

#[tokio::test]
async fn a_late_subscriber_gets_the_whole_story_then_the_stream_ends() {
    let cache = MemoryStatusCache::new();
    let id = TaskId::new();
    for n in 0..3 {
        cache.publish(id, json!({"n": n})).await.unwrap();
    }
    cache.close(id).await.unwrap();
    let events: Vec<_> = cache.subscribe(id, 0).await.unwrap().collect().await;
    assert_eq!(seqs(&events), [0, 1, 2]);
    assert_eq!(events[1].data, json!({"n": 1}));
}

#[tokio::test]
async fn subscribing_from_a_seq_skips_what_the_reader_has() {
    let cache = MemoryStatusCache::new();
    let id = TaskId::new();
    for n in 0..5 {
        cache.publish(id, json!(n)).await.unwrap();
    }
    cache.close(id).await.unwrap();
    let events: Vec<_> = cache.subscribe(id, 3).await.unwrap().collect().await;
    assert_eq!(seqs(&events), [3, 4]);
    let events: Vec<_> = cache.subscribe(id, 99).await.unwrap().collect().await;
    assert!(events.is_empty());
}

#[tokio::test]
async fn a_subscriber_gets_history_then_live_events_until_close() {
    let cache = MemoryStatusCache::new();
    let id = TaskId::new();
    cache.publish(id, json!("before")).await.unwrap();
    let mut stream = cache.subscribe(id, 0).await.unwrap();
    assert_eq!(stream.next().await.unwrap().data, json!("before"));
    assert!(
        stream.next().now_or_never().is_none(),
        "waits for live events"
    );
    cache.publish(id, json!("live")).await.unwrap();
    let live = stream.next().await.unwrap();
    assert_eq!((live.seq, live.data), (1, json!("live")));
    cache.close(id).await.unwrap();
    assert!(stream.next().await.is_none(), "close ends the stream");
}

#[tokio::test]
async fn events_published_before_close_reach_a_live_subscriber_before_the_end() {
    let cache = MemoryStatusCache::new();
    let id = TaskId::new();
    let stream = cache.subscribe(id, 0).await.unwrap();
    for n in 0..4 {
        cache.publish(id, json!(n)).await.unwrap();
    }
    cache.close(id).await.unwrap();
    let events: Vec<_> = stream.collect().await;
    assert_eq!(seqs(&events), [0, 1, 2, 3]);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_catches_up_from_history() {
    let cache = MemoryStatusCache::with_limits(MemoryCacheLimits {
        live_buffer: 2,
        ..MemoryCacheLimits::default()
    });
    let id = TaskId::new();
    let stream = cache.subscribe(id, 0).await.unwrap();
    // Far more than the live buffer holds, while the subscriber reads nothing.
    for n in 0..50 {
        cache.publish(id, json!(n)).await.unwrap();
    }
    cache.close(id).await.unwrap();
    let events: Vec<_> = stream.collect().await;
    assert_eq!(seqs(&events), (0..50).collect::<Vec<_>>());
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
    let events: Vec<_> = cache.subscribe(id, 0).await.unwrap().collect().await;
    assert_eq!(seqs(&events), [3, 4, 5, 6, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_racing_publishes_see_every_event_once_in_order() {
    const EVENTS: u64 = 4_000;
    const SUBSCRIBERS: u64 = 16;
    let cache = MemoryStatusCache::with_limits(MemoryCacheLimits {
        live_buffer: 16,
        ..MemoryCacheLimits::default()
    });
    let id = TaskId::new();
    let (published, _) = tokio::sync::watch::channel(0_u64);
    // Each subscriber joins at its own point of the run, while events keep coming.
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|k| {
            let cache = cache.clone();
            let mut published = published.subscribe();
            tokio::spawn(async move {
                let join_at = k * EVENTS / SUBSCRIBERS;
                published.wait_for(|&n| n >= join_at).await.unwrap();
                let stream = cache.subscribe(id, 0).await.unwrap();
                seqs(&stream.collect::<Vec<_>>().await)
            })
        })
        .collect();
    for n in 0..EVENTS {
        cache.publish(id, json!(n)).await.unwrap();
        published.send_replace(n + 1);
        tokio::task::yield_now().await;
    }
    cache.close(id).await.unwrap();
    let expected: Vec<u64> = (0..EVENTS).collect();
    for subscriber in subscribers {
        assert_eq!(subscriber.await.unwrap(), expected);
    }
}

#[tokio::test]
async fn two_tasks_keep_separate_statuses_and_streams() {
    let cache = MemoryStatusCache::new();
    let (a, b) = (TaskId::new(), TaskId::new());
    cache.set_status(a, TaskStatus::Queued).await.unwrap();
    cache.set_status(b, TaskStatus::Failed).await.unwrap();
    cache.publish(a, json!("a0")).await.unwrap();
    assert_eq!(cache.publish(b, json!("b0")).await.unwrap(), 0);
    cache.publish(a, json!("a1")).await.unwrap();
    cache.close(b).await.unwrap();
    let b_events: Vec<_> = cache.subscribe(b, 0).await.unwrap().collect().await;
    assert_eq!(
        b_events.iter().map(|e| &e.data).collect::<Vec<_>>(),
        [&json!("b0")]
    );
    let mut a_stream = cache.subscribe(a, 0).await.unwrap();
    assert_eq!(a_stream.next().await.unwrap().data, json!("a0"));
    assert_eq!(a_stream.next().await.unwrap().data, json!("a1"));
    assert!(
        a_stream.next().now_or_never().is_none(),
        "closing b left a open"
    );
    assert_eq!(cache.status(a).await.unwrap(), Some(TaskStatus::Queued));
    assert_eq!(cache.status(b).await.unwrap(), Some(TaskStatus::Failed));
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
        let events: Vec<_> = cache.subscribe(id, 0).await.unwrap().collect().await;
        assert_eq!(events.len(), 1);
    }
}
