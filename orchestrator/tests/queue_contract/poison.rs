//! The wire format, and what the queue does with messages nobody can handle: they go to
//! the dead letters and the queue moves on.

use std::time::Duration;

use orchestrator::{TaskId, TaskMessage};

use super::{QueueFixture, assert_nothing_within, dead_letters_reaching, message, receive_within};

pub async fn a_message_in_the_wire_format_from_another_producer_is_received(fx: QueueFixture) {
    let id = TaskId::new();
    // Unknown fields are ignored, so newer producers do not break older consumers.
    let payload = format!(r#"{{"task_id":"{id}","priority":"high"}}"#);
    fx.probe.inject_raw(payload.into_bytes()).await;
    let delivery = receive_within(fx.queue.as_ref(), fx.patience).await;
    assert_eq!(delivery.message, TaskMessage { task_id: id });
    delivery.ack().await.unwrap();
}

pub async fn unparseable_messages_are_dead_lettered_and_do_not_block_the_queue(fx: QueueFixture) {
    let garbage: [&[u8]; 3] = [b"not json at all", br#"{"task_id": 42}"#, b"\xff\xfe"];
    for payload in garbage {
        fx.probe.inject_raw(payload.to_vec()).await;
    }
    let good = message();
    fx.queue.enqueue(good.clone()).await.unwrap();
    let delivery = receive_within(fx.queue.as_ref(), fx.patience).await;
    assert_eq!(
        delivery.message, good,
        "a poison message came out of receive"
    );
    delivery.ack().await.unwrap();
    let dead = dead_letters_reaching(&fx, garbage.len()).await;
    let payloads: Vec<&[u8]> = dead.iter().map(|d| d.payload.as_slice()).collect();
    for payload in garbage {
        assert!(
            payloads.contains(&payload),
            "{payload:?} not in {payloads:?}"
        );
    }
    assert!(dead.iter().all(|d| !d.reason.is_empty()), "{dead:?}");
}

pub async fn a_message_nacked_max_attempts_times_is_dead_lettered(fx: QueueFixture) {
    let sent = message();
    fx.queue.enqueue(sent.clone()).await.unwrap();
    for attempt in 1..=fx.max_attempts {
        let delivery = receive_within(fx.queue.as_ref(), fx.patience).await;
        assert_eq!(delivery.message, sent);
        assert_eq!(delivery.attempt, attempt);
        delivery.nack(Duration::ZERO).await.unwrap();
    }
    let dead = dead_letters_reaching(&fx, 1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        TaskMessage::from_payload(&dead[0].payload).unwrap(),
        sent,
        "the dead letter keeps the message"
    );
    assert!(
        dead[0].reason.contains(&fx.max_attempts.to_string()),
        "{}",
        dead[0].reason
    );
    assert_nothing_within(fx.queue.as_ref(), Duration::from_millis(500)).await;
}
