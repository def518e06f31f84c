//! Publishing a run's events without ever making the worker wait on the cache.
//!
//! The worker reads an agent's events from its output as they come; if it awaited the
//! cache for each one, a slow or unreachable cache would back up into the agent's stdout
//! pipe and stall the agent itself. So each run gets an [`EventPublisher`]: a bounded
//! buffer the worker drops events into without waiting, and a task of its own that
//! drains the buffer into the cache, a batch per call (coalescing whatever queued up
//! while the previous call was in flight, which is also what keeps up with a slow cache).
//!
//! When the buffer is full, or a publish fails, events are dropped and counted, never
//! retried into a growing backlog: the trajectory file keeps every event, the stream is
//! the live view. The next batch that gets through starts with an
//! `{"type":"events_dropped","count":N}` event, so a reader knows what it missed. Events
//! keep their order; the cache numbers them.
//!
//! Each event travels with its index in the run's output, and the cache takes each index
//! of a run once ([`StatusCache::publish_run_events`]): a worker that re-attaches to a
//! run replays it from the start, and only what the stream does not hold yet goes in.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::counters::counters;
use crate::cache::{RunEvent, StatusCache};
use crate::task::TaskId;

/// Most events sent to the cache in one call.
const MAX_BATCH: usize = 256;

/// What became of a run's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Events the cache accepted, new or already held from an earlier watch of the run
    /// (not counting `events_dropped` notices).
    pub published: u64,
    /// Events lost: buffer full, publish failed, or still buffered when time ran out.
    pub dropped: u64,
    /// Publish calls that failed.
    pub failed_calls: u64,
}

#[derive(Debug, Default)]
struct Tally {
    published: AtomicU64,
    dropped: AtomicU64,
    failed_calls: AtomicU64,
    /// Dropped and not yet announced with an `events_dropped` event.
    unannounced: AtomicU64,
    /// Sent and not yet taken by the drainer.
    queued: AtomicU64,
}

impl Tally {
    fn drop_events(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.unannounced.fetch_add(n, Ordering::Relaxed);
        counters().events_dropped(n);
    }

    fn report(&self) -> PublishReport {
        PublishReport {
            published: self.published.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed_calls: self.failed_calls.load(Ordering::Relaxed),
        }
    }
}

/// One run's events on their way to the cache.
#[derive(Debug)]
pub struct EventPublisher {
    id: TaskId,
    sender: mpsc::Sender<RunEvent>,
    tally: Arc<Tally>,
    drainer: JoinHandle<()>,
}

impl EventPublisher {
    /// Starts the drainer for the events of `run` on task stream `id`, buffering at most
    /// `capacity` events.
    pub fn start(cache: Arc<dyn StatusCache>, id: TaskId, run: String, capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let tally = Arc::new(Tally::default());
        let drainer = tokio::spawn(drain(cache, id, run, receiver, Arc::clone(&tally)));
        Self {
            id,
            sender,
            tally,
            drainer,
        }
    }

    /// Hands the run's event number `index` (from 0, in the run's output) to the
    /// publisher; never waits. A full buffer drops it (counted).
    pub fn send(&self, index: u64, data: Value) {
        self.tally.queued.fetch_add(1, Ordering::Relaxed);
        if self.sender.try_send(RunEvent { index, data }).is_err() {
            self.tally.queued.fetch_sub(1, Ordering::Relaxed);
            self.tally.drop_events(1);
        }
    }

    /// Publishes what is still buffered, waiting at most `within`; what is left after
    /// that is dropped. Call it before announcing the run's end, so the end comes last.
    pub async fn finish(self, within: Duration) -> PublishReport {
        let Self {
            id,
            sender,
            tally,
            mut drainer,
        } = self;
        drop(sender);
        if tokio::time::timeout(within, &mut drainer).await.is_err() {
            drainer.abort();
            let left = tally.queued.swap(0, Ordering::Relaxed);
            tally.drop_events(left);
            tracing::warn!(task_id = %id, left, "the cache did not take a run's last events in time");
        }
        let report = tally.report();
        if report.dropped > 0 {
            tracing::warn!(task_id = %id, ?report, "some of a run's events did not reach the live stream");
        }
        report
    }
}

async fn drain(
    cache: Arc<dyn StatusCache>,
    id: TaskId,
    run: String,
    mut receiver: mpsc::Receiver<RunEvent>,
    tally: Arc<Tally>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events = batch.len() as u64;
        tally.queued.fetch_sub(events, Ordering::Relaxed);
        let missed = tally.unannounced.swap(0, Ordering::Relaxed);
        if missed > 0 {
            // Under the index of the event after the gap: a replay that skips that event
            // skips its notice too.
            let index = batch.first().map_or(0, |event| event.index);
            let data = json!({"type": "events_dropped", "count": missed});
            batch.insert(0, RunEvent { index, data });
        }
        match cache
            .publish_run_events(id, &run, std::mem::take(&mut batch))
            .await
        {
            Ok(_) => {
                tally.published.fetch_add(events, Ordering::Relaxed);
            }
            Err(err) => {
                let failures = tally.failed_calls.fetch_add(1, Ordering::Relaxed);
                counters().publish_failed();
                // Announce the earlier loss again with this one, once something gets through.
                tally.unannounced.fetch_add(missed, Ordering::Relaxed);
                tally.drop_events(events);
                // One line per run is enough to see the cache is down; the counter has the rest.
                if failures == 0 {
                    tracing::warn!(task_id = %id, error = %err, "publishing a run's events failed; dropping them");
                }
            }
        }
    }
}
