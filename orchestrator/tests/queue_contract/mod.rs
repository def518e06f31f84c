//! The contract every [`Queue`] keeps, as one suite run against each implementation
//! (the in-process queue here, the Kafka queue on a real broker).
//!
//! A test file for an implementation includes this module and invokes
//! `queue_contract_tests!(make_fixture)`, where `make_fixture` is an `async fn() ->
//! QueueFixture` giving a fresh, empty queue (a new topic and group for Kafka). The
//! checks only assume what Kafka can keep: at-least-once delivery, no order across keys,
//! deliveries that may take a while (`patience`) to arrive.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod poison;
mod settle;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orchestrator::{DeadLetter, Delivery, Queue, TaskId, TaskMessage};

pub use poison::*;
pub use settle::*;

/// What only the test needs from an implementation: to act as a foreign producer, and
/// to look at the dead-letter place.
#[async_trait]
pub trait QueueProbe: Send + Sync {
    /// Publishes `payload` as it is, as a producer other than this code would.
    async fn inject_raw(&self, payload: Vec<u8>);

    /// The dead letters so far, oldest first.
    async fn dead_letters(&self) -> Vec<DeadLetter>;
}

/// A queue under test and whatever must live as long as it.
pub struct QueueFixture {
    pub queue: Arc<dyn Queue>,
    /// A second consumer of the same queue (another worker process of the group).
    pub other: Arc<dyn Queue>,
    pub probe: Box<dyn QueueProbe>,
    /// The queue's `max_attempts` (small, so the suite can reach it).
    pub max_attempts: u32,
    /// Longest a published message may take to be delivered (a hang guard).
    pub patience: Duration,
    pub _keep: Box<dyn Any + Send>,
}

/// Generates one `#[tokio::test]` per contract check, each on a fresh fixture.
macro_rules! queue_contract_tests {
    ($make:path) => {
        queue_contract_tests!(@each $make;
            every_enqueued_message_is_received,
            an_acked_message_is_not_delivered_again,
            a_nacked_message_comes_back_after_its_delay_and_not_before,
            a_delivery_dropped_unsettled_comes_back,
            a_held_delivery_does_not_hold_back_later_messages,
            two_consumers_between_them_receive_every_message,
            a_receive_cancelled_by_select_loses_no_message,
            a_message_in_the_wire_format_from_another_producer_is_received,
            unparseable_messages_are_dead_lettered_and_do_not_block_the_queue,
            a_message_nacked_max_attempts_times_is_dead_lettered,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                queue_contract::$name($make().await).await;
            }
        )*
    };
}
pub(crate) use queue_contract_tests;

pub fn message() -> TaskMessage {
    TaskMessage {
        task_id: TaskId::new(),
    }
}

/// The next delivery, failing the test if none comes within `patience`.
pub async fn receive_within(queue: &dyn Queue, patience: Duration) -> Delivery {
    tokio::time::timeout(patience, queue.receive())
        .await
        .expect("no delivery in time")
        .unwrap()
}

/// Fails the test if a delivery comes within `quiet`.
pub async fn assert_nothing_within(queue: &dyn Queue, quiet: Duration) {
    if let Ok(delivery) = tokio::time::timeout(quiet, queue.receive()).await {
        panic!("unexpected delivery: {:?}", delivery.unwrap());
    }
}

/// Polls the dead letters until `count` are there (or `patience` passes).
pub async fn dead_letters_reaching(fx: &QueueFixture, count: usize) -> Vec<DeadLetter> {
    let deadline = tokio::time::Instant::now() + fx.patience;
    loop {
        let dead = fx.probe.dead_letters().await;
        if dead.len() >= count || tokio::time::Instant::now() >= deadline {
            return dead;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
