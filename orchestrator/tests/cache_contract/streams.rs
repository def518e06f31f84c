//! Subscriptions: history then live, resumption from a seq, the end at close, and fan-out
//! to subscribers on other clients.

use orchestrator::{TaskId, TaskStatus};
use serde_json::json;

use super::{CacheFixture, collect_ok, is_waiting, next_ok, seqs};

pub async fn a_late_subscriber_gets_the_whole_story_then_the_stream_ends(fx: CacheFixture) {
    let id = TaskId::new();
    for n in 0..3 {
        fx.cache.publish(id, json!({"n": n})).await.unwrap();
    }
    fx.cache.close(id).await.unwrap();
    let events = collect_ok(fx.cache.subscribe(id, 0).await.unwrap()).await;
    assert_eq!(seqs(&events), [0, 1, 2]);
    assert_eq!(events[1].data, json!({"n": 1}));
}

pub async fn subscribing_from_a_seq_skips_what_the_reader_has(fx: CacheFixture) {
    let id = TaskId::new();
    for n in 0..5 {
        fx.cache.publish(id, json!(n)).await.unwrap();
    }
    fx.cache.close(id).await.unwrap();
    let events = collect_ok(fx.cache.subscribe(id, 3).await.unwrap()).await;
    assert_eq!(seqs(&events), [3, 4]);
    let events = collect_ok(fx.cache.subscribe(id, 99).await.unwrap()).await;
    assert!(events.is_empty());
}

pub async fn a_subscriber_gets_history_then_live_events_until_close(fx: CacheFixture) {
    let id = TaskId::new();
    fx.cache.publish(id, json!("before")).await.unwrap();
    let mut stream = fx.cache.subscribe(id, 0).await.unwrap();
    assert_eq!(next_ok(&mut stream).await.data, json!("before"));
    assert!(is_waiting(&mut stream).await, "waits for live events");
    fx.cache.publish(id, json!("live")).await.unwrap();
    let live = next_ok(&mut stream).await;
    assert_eq!((live.seq, live.data), (1, json!("live")));
    fx.cache.close(id).await.unwrap();
    assert!(collect_ok(stream).await.is_empty(), "close ends the stream");
}

pub async fn events_published_before_close_reach_a_live_subscriber_before_the_end(
    fx: CacheFixture,
) {
    let id = TaskId::new();
    let stream = fx.cache.subscribe(id, 0).await.unwrap();
    for n in 0..4 {
        fx.cache.publish(id, json!(n)).await.unwrap();
    }
    fx.cache.close(id).await.unwrap();
    assert_eq!(seqs(&collect_ok(stream).await), [0, 1, 2, 3]);
}

/// The worker publishes on one client, an API replica serves SSE from another.
pub async fn a_subscriber_on_another_client_follows_live_events(fx: CacheFixture) {
    let id = TaskId::new();
    fx.cache.publish(id, json!("history")).await.unwrap();
    let mut stream = fx.other.subscribe(id, 0).await.unwrap();
    assert_eq!(next_ok(&mut stream).await.data, json!("history"));
    fx.cache.publish(id, json!("live")).await.unwrap();
    assert_eq!(next_ok(&mut stream).await.data, json!("live"));
    fx.cache.close(id).await.unwrap();
    assert!(collect_ok(stream).await.is_empty());
}

pub async fn subscribers_racing_publishes_see_every_event_once_in_order(fx: CacheFixture) {
    const EVENTS: u64 = 1_000;
    const SUBSCRIBERS: u64 = 8;
    let id = TaskId::new();
    let (published, _) = tokio::sync::watch::channel(0_u64);
    // Each subscriber joins at its own point of the run, while events keep coming.
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|k| {
            let cache = if k % 2 == 0 {
                fx.cache.clone()
            } else {
                fx.other.clone()
            };
            let mut published = published.subscribe();
            tokio::spawn(async move {
                let join_at = k * EVENTS / SUBSCRIBERS;
                published.wait_for(|&n| n >= join_at).await.unwrap();
                seqs(&collect_ok(cache.subscribe(id, 0).await.unwrap()).await)
            })
        })
        .collect();
    for n in 0..EVENTS {
        fx.cache.publish(id, json!(n)).await.unwrap();
        published.send_replace(n + 1);
        tokio::task::yield_now().await;
    }
    fx.cache.close(id).await.unwrap();
    let expected: Vec<u64> = (0..EVENTS).collect();
    for subscriber in subscribers {
        assert_eq!(subscriber.await.unwrap(), expected);
    }
}

pub async fn two_tasks_keep_separate_statuses_and_streams(fx: CacheFixture) {
    let (a, b) = (TaskId::new(), TaskId::new());
    fx.cache.set_status(a, TaskStatus::Queued).await.unwrap();
    fx.cache.set_status(b, TaskStatus::Failed).await.unwrap();
    fx.cache.publish(a, json!("a0")).await.unwrap();
    assert_eq!(fx.cache.publish(b, json!("b0")).await.unwrap(), 0);
    fx.cache.publish(a, json!("a1")).await.unwrap();
    fx.cache.close(b).await.unwrap();
    let b_events = collect_ok(fx.cache.subscribe(b, 0).await.unwrap()).await;
    assert_eq!(
        b_events.iter().map(|e| &e.data).collect::<Vec<_>>(),
        [&json!("b0")]
    );
    let mut a_stream = fx.cache.subscribe(a, 0).await.unwrap();
    assert_eq!(next_ok(&mut a_stream).await.data, json!("a0"));
    assert_eq!(next_ok(&mut a_stream).await.data, json!("a1"));
    assert!(is_waiting(&mut a_stream).await, "closing b left a open");
    assert_eq!(fx.cache.status(a).await.unwrap(), Some(TaskStatus::Queued));
    assert_eq!(fx.cache.status(b).await.unwrap(), Some(TaskStatus::Failed));
}

pub async fn closing_twice_is_harmless(fx: CacheFixture) {
    let id = TaskId::new();
    fx.cache.publish(id, json!("only")).await.unwrap();
    fx.cache.close(id).await.unwrap();
    fx.other.close(id).await.unwrap();
    let events = collect_ok(fx.cache.subscribe(id, 0).await.unwrap()).await;
    assert_eq!(seqs(&events), [0]);
}
