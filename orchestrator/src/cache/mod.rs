//! The status cache and live event fan-out.
//!
//! Readers poll status far more often than it changes, and SSE clients want each agent
//! event as it happens, including late readers who need the story from the start. The
//! cache holds the latest status per task and an ordered, capped history of events per
//! task with a live tail. It is a cache: the store stays the truth, and everything here
//! is built so that a cache outage slows the service down instead of breaking it.
//!
//! The contract (every implementation passes the cache contract suite):
//! - **Numbers are the cache's.** `publish_batch` numbers events atomically, from 0,
//!   gapless, in order, whoever publishes (several workers, the API, the reconciler), so
//!   `Last-Event-ID` means the same on every API replica.
//! - **A run's events go in once.** A worker that re-attaches to a run (after a restart,
//!   a deploy, a lost lease) replays the run's events from its start; `publish_run_events`
//!   keys them by their index in the run's output and leaves out those already taken, so
//!   readers never see an event twice.
//! - **Streams say when they broke.** A subscription yields `Ok(event)`s and ends after
//!   the task's stream was closed and drained; an `Err` item means the cache failed (the
//!   task did not end) and is the stream's last item.
//! - **Every call is bounded in time.** Implementations bound their own round trips
//!   (including the waits of a live stream), and [`TimeLimitedCache`] puts a deadline
//!   on every call whatever the implementation does.
//! - **Errors say whether to retry** ([`CacheError::is_transient`]) and keep their source.
//!
//! Around the trait: [`EventPublisher`] so the worker never waits on the cache while it
//! reads an agent's events, and [`follow`] so SSE falls back to the store when the cache
//! is down. Implementations: `MemoryStatusCache` (embedded), `RedisStatusCache` (cluster).

mod counters;
mod follow;
mod memory;
mod publisher;
mod redis;
mod time_limit;
mod windows;

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use crate::task::{TaskId, TaskStatus};

pub use counters::{CacheCounters, CacheCountersSnapshot, counters};
pub use follow::{FollowOptions, Followed, follow};
pub use memory::{MemoryCacheLimits, MemoryStatusCache};
pub use publisher::{EventPublisher, PublishReport};
pub use redis::{RedisCacheConfig, RedisStatusCache};
pub use time_limit::TimeLimitedCache;

/// A boxed error from a backend client, kept as the source of a [`CacheError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A subscription: events in order; an `Err` is a cache failure and the last item.
pub type EventStream = BoxStream<'static, Result<TaskEvent, CacheError>>;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache could not be reached or failed; worth retrying with backoff.
    #[error("status cache unavailable ({context}): {source}")]
    Unavailable {
        context: String,
        #[source]
        source: BoxError,
    },
    /// The cache did not answer in time; worth retrying with backoff.
    #[error("status cache did not answer within {after:?} ({context})")]
    Timeout { context: String, after: Duration },
    /// The cache holds something this code cannot read (a foreign or corrupt entry).
    #[error("status cache entry unreadable ({context}): {source}")]
    Corrupt {
        context: String,
        #[source]
        source: BoxError,
    },
}

impl CacheError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }
}

/// One event of a run as its runner reported it: `index` is its place in the run's own
/// output (0 for the first line the agent printed), the same whichever process watches.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub index: u64,
    pub data: serde_json::Value,
}

/// Where a key stands in its rate-limit window ([`StatusCache::count_hit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowHits {
    /// Hits in the current window, the one just counted included.
    pub hits: u64,
    /// Until the window ends (and the count starts again).
    pub resets_in: Duration,
}

/// One event of a task's stream: an agent event (a JSON object as `agent-rs` printed it)
/// or a status change, numbered from 0 in order.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvent {
    pub seq: u64,
    pub data: serde_json::Value,
}

#[async_trait]
pub trait StatusCache: Send + Sync + 'static {
    async fn set_status(&self, id: TaskId, status: TaskStatus) -> Result<(), CacheError>;

    /// The latest status set, `None` if the cache has none (never set, or expired).
    async fn status(&self, id: TaskId) -> Result<Option<TaskStatus>, CacheError>;

    /// Appends events to the task's history in order and wakes its subscribers; returns
    /// the numbers they got (contiguous: nobody else's event lands between them).
    async fn publish_batch(
        &self,
        id: TaskId,
        events: Vec<serde_json::Value>,
    ) -> Result<Range<u64>, CacheError>;

    /// Appends a run's events, each at most once: an event whose `index` is below the
    /// mark of `run` (one past the highest index taken for it before this call) is left
    /// out, as a re-attached worker replays the run from its start. Indexes within a call
    /// must not decrease and may skip (events dropped on the way); several processes may
    /// publish the same run at once. Returns the numbers the events taken got (empty when
    /// every one was already there).
    async fn publish_run_events(
        &self,
        id: TaskId,
        run: &str,
        events: Vec<RunEvent>,
    ) -> Result<Range<u64>, CacheError>;

    /// Counts one hit on `key` (a rate limit's subject, such as an owner's submissions)
    /// in its current window, shared by every client of the cache: the window is fixed,
    /// `window` long from the first hit after the last one ended. Returns the hits in the
    /// window so far, this one included, and the time until it ends.
    async fn count_hit(&self, key: &str, window: Duration) -> Result<WindowHits, CacheError>;

    /// Appends one event; returns its number.
    async fn publish(&self, id: TaskId, event: serde_json::Value) -> Result<u64, CacheError> {
        Ok(self.publish_batch(id, vec![event]).await?.start)
    }

    /// Every event from `from_seq` on: the history first, then live ones as they come.
    /// Events the cache no longer holds are skipped (the first seq shows the gap). The
    /// stream ends after `close` was called for the task and the history is drained.
    async fn subscribe(&self, id: TaskId, from_seq: u64) -> Result<EventStream, CacheError>;

    /// Marks the task's stream finished (terminal status reached).
    async fn close(&self, id: TaskId) -> Result<(), CacheError>;
}
