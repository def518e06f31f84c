//! The contract every [`StatusCache`] keeps, as one suite run against each implementation
//! (the memory cache here, the Redis cache on a real server).
//!
//! A test file for an implementation includes this module and invokes
//! `cache_contract_tests!(make_fixture)`, where `make_fixture` is an `async fn() ->
//! CacheFixture`. Every check uses fresh task ids, so the suite also runs against a
//! shared server. `other` is a second client of the same cache (another API replica or
//! worker process): numbering and fan-out must hold across clients, not just within one.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod hits;
mod numbering;
mod run_events;
mod streams;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use orchestrator::{CacheError, EventStream, StatusCache, TaskEvent};

pub use hits::*;
pub use numbering::*;
pub use run_events::*;
pub use streams::*;

/// A cache under test and whatever must live as long as it.
pub struct CacheFixture {
    pub cache: Arc<dyn StatusCache>,
    pub other: Arc<dyn StatusCache>,
    pub _keep: Box<dyn Any + Send>,
}

/// Generates one `#[tokio::test]` per contract check, each on a fresh fixture.
macro_rules! cache_contract_tests {
    ($make:path) => {
        cache_contract_tests!(@each $make;
            status_is_the_latest_one_set_and_none_before,
            publish_numbers_a_tasks_events_from_zero,
            a_batch_gets_contiguous_numbers_in_its_order,
            concurrent_publishers_on_two_clients_get_gapless_numbers,
            a_late_subscriber_gets_the_whole_story_then_the_stream_ends,
            subscribing_from_a_seq_skips_what_the_reader_has,
            a_subscriber_gets_history_then_live_events_until_close,
            events_published_before_close_reach_a_live_subscriber_before_the_end,
            a_subscriber_on_another_client_follows_live_events,
            subscribers_racing_publishes_see_every_event_once_in_order,
            two_tasks_keep_separate_statuses_and_streams,
            closing_twice_is_harmless,
            a_replayed_run_adds_only_the_events_not_yet_taken,
            each_run_keeps_its_own_mark,
            two_clients_replaying_one_run_at_once_add_each_event_once,
            hits_are_counted_per_key_across_clients_until_the_window_ends,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                cache_contract::$name($make().await).await;
            }
        )*
    };
}
pub(crate) use cache_contract_tests;

/// Longest any check waits on a stream (a hang guard, not a speed goal).
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn seqs(events: &[TaskEvent]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

/// Reads a stream to its end; any `Err` item fails the test.
pub async fn collect_ok(stream: EventStream) -> Vec<TaskEvent> {
    let items: Vec<Result<TaskEvent, CacheError>> =
        tokio::time::timeout(PATIENCE, stream.collect())
            .await
            .expect("the stream never ended");
    items.into_iter().map(Result::unwrap).collect()
}

/// The next item of a stream, which must be an event.
pub async fn next_ok(stream: &mut EventStream) -> TaskEvent {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("no event in time")
        .expect("the stream ended")
        .unwrap()
}

/// Whether the stream yields nothing within a short while (it waits for live events).
pub async fn is_waiting(stream: &mut EventStream) -> bool {
    tokio::time::timeout(Duration::from_millis(200), stream.next())
        .await
        .is_err()
}
