//! Delivery and settling: every message arrives, ack ends it, nack and drop bring it back,
//! and an unsettled delivery holds nothing else up.

use std::collections::HashSet;
use std::time::Duration;

use orchestrator::TaskId;

use super::{QueueFixture, assert_nothing_within, message, receive_within};

/// Long enough that a redelivery it should have prevented would show up.
const QUIET: Duration = Duration::from_millis(500);

pub async fn every_enqueued_message_is_received(fx: QueueFixture) {
    let sent: Vec<_> = (0..5).map(|_| message()).collect();
    for m in &sent {
        fx.queue.enqueue(m.clone()).await.unwrap();
    }
    let mut received = HashSet::new();
    for _ in 0..sent.len() {
        let delivery = receive_within(fx.queue.as_ref(), fx.patience).await;
        assert_eq!(delivery.attempt, 1, "a first delivery is attempt 1");
        received.insert(delivery.message.task_id);
        delivery.ack().await.unwrap();
    }
    let expected: HashSet<TaskId> = sent.iter().map(|m| m.task_id).collect();
    assert_eq!(received, expected);
}

pub async fn an_acked_message_is_not_delivered_again(fx: QueueFixture) {
    let (first, second) = (message(), message());
    fx.queue.enqueue(first.clone()).await.unwrap();
    let delivery = receive_within(fx.queue.as_ref(), fx.patience).await;
    assert_eq!(delivery.message, first);
    delivery.ack().await.unwrap();
    fx.queue.enqueue(second.clone()).await.unwrap();
    let delivery = receive_within(fx.queue.as_ref(), fx.patience).await;
    assert_eq!(delivery.message, second, "the acked message came back");
    delivery.ack().await.unwrap();
    assert_nothing_within(fx.queue.as_ref(), QUIET).await;
    assert_nothing_within(fx.other.as_ref(), QUIET).await;
}

pub async fn a_nacked_message_comes_back_after_its_delay_and_not_before(fx: QueueFixture) {
    let sent = message();
    fx.queue.enqueue(sent.clone()).await.unwrap();
    let delivery = receive_within(fx.queue.as_ref(), fx.patience).await;
    let delay = Duration::from_millis(800);
    let nacked_at = tokio::time::Instant::now();
    delivery.nack(delay).await.unwrap();
    let again = receive_within(fx.queue.as_ref(), fx.patience + delay).await;
    assert!(
        nacked_at.elapsed() >= delay,
        "redelivered after {:?}, before the {delay:?} delay",
        nacked_at.elapsed()
    );
    assert_eq!(again.message, sent);
    assert_eq!(again.attempt, 2, "a redelivery counts its attempt");
    again.ack().await.unwrap();
    assert_nothing_within(fx.queue.as_ref(), QUIET).await;
}

pub async fn a_delivery_dropped_unsettled_comes_back(fx: QueueFixture) {
    let sent = message();
    fx.queue.enqueue(sent.clone()).await.unwrap();
    let delivery = receive_within(fx.queue.as_ref(), fx.patience).await;
    drop(delivery);
    let again = receive_within(fx.queue.as_ref(), fx.patience).await;
    assert_eq!(again.message, sent);
    assert_eq!(again.attempt, 2);
    again.ack().await.unwrap();
}

pub async fn a_held_delivery_does_not_hold_back_later_messages(fx: QueueFixture) {
    let (first, second) = (message(), message());
    fx.queue.enqueue(first.clone()).await.unwrap();
    let held = receive_within(fx.queue.as_ref(), fx.patience).await;
    assert_eq!(held.message, first);
    fx.queue.enqueue(second.clone()).await.unwrap();
    let next = receive_within(fx.queue.as_ref(), fx.patience).await;
    assert_eq!(next.message, second, "the held message was delivered twice");
    next.ack().await.unwrap();
    held.ack().await.unwrap();
    assert_nothing_within(fx.queue.as_ref(), QUIET).await;
}

pub async fn two_consumers_between_them_receive_every_message(fx: QueueFixture) {
    const COUNT: usize = 20;
    let sent: HashSet<TaskId> = (0..COUNT).map(|_| TaskId::new()).collect();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let consumers: Vec<_> = [fx.queue.clone(), fx.other.clone()]
        .into_iter()
        .map(|queue| {
            let seen = seen_tx.clone();
            tokio::spawn(async move {
                while let Ok(delivery) = queue.receive().await {
                    let id = delivery.message.task_id;
                    delivery.ack().await.unwrap();
                    if seen.send(id).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    for &task_id in &sent {
        fx.queue
            .enqueue(orchestrator::TaskMessage { task_id })
            .await
            .unwrap();
    }
    let mut received = HashSet::new();
    while received.len() < COUNT {
        let id = tokio::time::timeout(fx.patience, seen_rx.recv())
            .await
            .expect("a message never arrived")
            .unwrap();
        received.insert(id);
    }
    assert_eq!(received, sent);
    for consumer in consumers {
        consumer.abort();
    }
}

pub async fn a_receive_cancelled_by_select_loses_no_message(fx: QueueFixture) {
    for _ in 0..50 {
        tokio::select! {
            biased;
            delivery = fx.queue.receive() => panic!("nothing was sent yet: {delivery:?}"),
            _ = std::future::ready(()) => {}
        }
    }
    // Receives cut off by a timeout while a message is on its way.
    let sent = message();
    fx.queue.enqueue(sent.clone()).await.unwrap();
    let mut got = None;
    for _ in 0..200 {
        if let Ok(delivery) =
            tokio::time::timeout(Duration::from_millis(5), fx.queue.receive()).await
        {
            got = Some(delivery.unwrap());
            break;
        }
    }
    let delivery = match got {
        Some(delivery) => delivery,
        None => receive_within(fx.queue.as_ref(), fx.patience).await,
    };
    assert_eq!(delivery.message, sent);
    delivery.ack().await.unwrap();
}
