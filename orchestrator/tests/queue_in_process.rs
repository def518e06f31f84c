//! `InProcessQueue`: the shared queue contract, and what only the in-process queue
//! promises: FIFO order, redeliveries first, distinct deliveries to concurrent
//! receivers, close for shutdown, a bounded dead-letter list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod queue_contract;

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use orchestrator::{
    DeadLetter, InProcessQueue, Queue, QueueError, QueueLimits, TaskId, TaskMessage,
};
use queue_contract::{QueueFixture, QueueProbe, queue_contract_tests};

struct InProcessProbe(InProcessQueue);

#[async_trait]
impl QueueProbe for InProcessProbe {
    async fn inject_raw(&self, payload: Vec<u8>) {
        self.0.enqueue_raw(payload).unwrap();
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        self.0.dead_letters()
    }
}

async fn fixture() -> QueueFixture {
    let max_attempts = 3;
    let queue = InProcessQueue::with_limits(QueueLimits {
        max_attempts,
        ..QueueLimits::default()
    });
    QueueFixture {
        queue: Arc::new(queue.clone()),
        other: Arc::new(queue.clone()),
        probe: Box::new(InProcessProbe(queue)),
        max_attempts,
        patience: Duration::from_secs(10),
        _keep: Box::new(()),
    }
}

mod contract {
    use super::*;
    queue_contract_tests!(fixture);
}

fn message() -> TaskMessage {
    TaskMessage {
        task_id: TaskId::new(),
    }
}

/// Polls once without waiting: `Some` if a message was ready.
fn try_receive(queue: &InProcessQueue) -> Option<orchestrator::Delivery> {
    queue.receive().now_or_never().map(Result::unwrap)
}

#[tokio::test]
async fn messages_arrive_in_the_order_they_were_sent() {
    let queue = InProcessQueue::new();
    let sent: Vec<TaskMessage> = (0..5).map(|_| message()).collect();
    for m in &sent {
        queue.enqueue(m.clone()).await.unwrap();
    }
    for expected in &sent {
        let delivery = queue.receive().await.unwrap();
        assert_eq!(&delivery.message, expected);
        delivery.ack().await.unwrap();
    }
    assert!(queue.is_empty());
}

#[tokio::test]
async fn an_acked_message_is_not_delivered_again() {
    let queue = InProcessQueue::new();
    let (first, second) = (message(), message());
    queue.enqueue(first.clone()).await.unwrap();
    queue.receive().await.unwrap().ack().await.unwrap();
    queue.enqueue(second.clone()).await.unwrap();
    let delivery = queue.receive().await.unwrap();
    assert_eq!(delivery.message, second);
    delivery.ack().await.unwrap();
    assert!(queue.is_empty());
    assert!(try_receive(&queue).is_none());
}

#[tokio::test]
async fn a_delivery_dropped_unsettled_is_redelivered_before_newer_messages() {
    let queue = InProcessQueue::new();
    let (first, second) = (message(), message());
    queue.enqueue(first.clone()).await.unwrap();
    queue.enqueue(second.clone()).await.unwrap();
    let delivery = queue.receive().await.unwrap();
    assert_eq!(delivery.message, first);
    drop(delivery);
    assert_eq!(queue.len(), 2);
    let again = queue.receive().await.unwrap();
    assert_eq!(again.message, first);
    again.ack().await.unwrap();
    assert_eq!(queue.receive().await.unwrap().message, second);
}

#[tokio::test]
async fn an_unsettled_delivery_is_not_given_to_another_receiver_while_held() {
    let queue = InProcessQueue::new();
    queue.enqueue(message()).await.unwrap();
    let held = queue.receive().await.unwrap();
    assert!(try_receive(&queue).is_none());
    drop(held);
    assert!(try_receive(&queue).is_some());
}

#[tokio::test]
async fn a_redelivery_wakes_a_waiting_receiver() {
    let queue = InProcessQueue::new();
    let sent = message();
    queue.enqueue(sent.clone()).await.unwrap();
    let held = queue.receive().await.unwrap();
    let waiter = tokio::spawn({
        let queue = queue.clone();
        async move { queue.receive().await.unwrap().message }
    });
    drop(held);
    assert_eq!(waiter.await.unwrap(), sent);
}

#[tokio::test]
async fn a_receive_dropped_after_being_woken_loses_no_message() {
    let queue = InProcessQueue::new();
    let mut cx = Context::from_waker(Waker::noop());
    // `receive` returns a boxed future: dropping it below really drops the wait.
    let mut waiting = queue.receive();
    assert!(waiting.as_mut().poll(&mut cx).is_pending());
    // The message arrives while the receive waits, and the receive is dropped before it
    // runs again (a `select!` that took another branch).
    let sent = message();
    queue.enqueue(sent.clone()).await.unwrap();
    drop(waiting);
    let delivery = try_receive(&queue).expect("the message is still there");
    assert_eq!(delivery.message, sent);
}

#[tokio::test]
async fn a_receive_cancelled_by_select_loses_no_message() {
    let queue = InProcessQueue::new();
    for _ in 0..50 {
        tokio::select! {
            biased;
            _ = queue.receive() => panic!("nothing was sent yet"),
            _ = std::future::ready(()) => {}
        }
    }
    let sent = message();
    queue.enqueue(sent.clone()).await.unwrap();
    assert_eq!(queue.receive().await.unwrap().message, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receivers_get_distinct_messages() {
    let queue = InProcessQueue::new();
    let receivers: Vec<_> = (0..16)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let delivery = queue.receive().await.unwrap();
                let id = delivery.message.task_id;
                delivery.ack().await.unwrap();
                id
            })
        })
        .collect();
    let sent: HashSet<TaskId> = (0..16).map(|_| TaskId::new()).collect();
    for &task_id in &sent {
        queue.enqueue(TaskMessage { task_id }).await.unwrap();
    }
    let mut received = HashSet::new();
    for receiver in receivers {
        assert!(
            received.insert(receiver.await.unwrap()),
            "a message was delivered twice"
        );
    }
    assert_eq!(received, sent);
    assert!(queue.is_empty());
}

#[tokio::test]
async fn a_closed_queue_refuses_senders_and_releases_waiting_receivers() {
    let queue = InProcessQueue::new();
    let waiter = tokio::spawn({
        let queue = queue.clone();
        async move { queue.receive().await }
    });
    queue.close();
    assert!(matches!(waiter.await.unwrap(), Err(QueueError::Closed)));
    assert!(matches!(
        queue.enqueue(message()).await,
        Err(QueueError::Closed)
    ));
    assert!(matches!(queue.receive().await, Err(QueueError::Closed)));
}

#[tokio::test(start_paused = true)]
async fn a_nack_with_a_delay_wakes_a_waiting_receiver_when_it_is_due() {
    let queue = InProcessQueue::new();
    let sent = message();
    queue.enqueue(sent.clone()).await.unwrap();
    let delivery = queue.receive().await.unwrap();
    let waiter = tokio::spawn({
        let queue = queue.clone();
        async move { queue.receive().await.unwrap() }
    });
    delivery.nack(Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(!waiter.is_finished(), "redelivered before the delay");
    let again = waiter.await.unwrap();
    assert_eq!((again.message, again.attempt), (sent, 2));
}

#[tokio::test]
async fn the_dead_letter_list_keeps_only_the_newest() {
    let queue = InProcessQueue::with_limits(QueueLimits {
        dead_letters_kept: 2,
        ..QueueLimits::default()
    });
    for n in 0..5u8 {
        queue.enqueue_raw(vec![b'x', b'0' + n]).unwrap();
    }
    let good = message();
    queue.enqueue(good.clone()).await.unwrap();
    assert_eq!(queue.receive().await.unwrap().message, good);
    let payloads: Vec<Vec<u8>> = queue
        .dead_letters()
        .into_iter()
        .map(|d| d.payload)
        .collect();
    assert_eq!(payloads, [b"x3".to_vec(), b"x4".to_vec()]);
}

#[tokio::test]
async fn raw_messages_are_refused_once_the_queue_is_closed() {
    let queue = InProcessQueue::new();
    queue.close();
    assert!(matches!(
        queue.enqueue_raw(b"{}".to_vec()),
        Err(QueueError::Closed)
    ));
}
