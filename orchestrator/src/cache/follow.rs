//! Following a task's events, with the store to fall back on when the cache fails.
//!
//! This is what an SSE client gets: the cache's numbered events (history, then live)
//! until the task's stream closes. The cache is allowed to fail; a client must then not
//! see a stream that simply ends as if the task had, nor an error page. So on a cache
//! failure, at the start or midway, the stream says so (`{"type":"degraded"}`), then
//! carries status changes read from the task's row (`{"type":"status", "source":"store"}`,
//! without an event number) until the task ends, trying the cache again between reads;
//! once the cache answers it continues with numbered events from where it stopped
//! (`{"type":"live_restored"}`). Events the cache no longer holds are announced with
//! `{"type":"events_skipped","from","to"}` instead of vanishing silently.
//!
//! A live stream that stays quiet also re-reads the row now and then: a task whose
//! terminal status never reached the cache (the cache was down at that moment) still
//! ends the stream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use serde_json::{Value, json};

use super::counters::counters;
use crate::cache::{CacheError, EventStream, StatusCache};
use crate::store::TaskStore;
use crate::task::{Task, TaskId, TaskStatus};

/// How a follower paces its reads of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowOptions {
    /// Between reads of the row (and tries of the cache) while the cache is down.
    pub fallback_poll: Duration,
    /// A live stream quiet for this long re-reads the row, to end if the task did.
    pub idle_check: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            fallback_poll: Duration::from_secs(2),
            idle_check: Duration::from_secs(30),
        }
    }
}

/// One item for the client: `seq` is the cache's event number (`None` for notices and
/// for status read from the store, which a client cannot resume after).
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    pub seq: Option<u64>,
    pub data: Value,
}

impl Followed {
    fn notice(data: Value) -> Self {
        Self { seq: None, data }
    }
}

/// The events of `task` from `from_seq` on, as described in the module doc. `task` is
/// the row as the caller just read it (for the owner check).
pub fn follow(
    cache: Arc<dyn StatusCache>,
    store: Arc<dyn TaskStore>,
    task: &Task,
    from_seq: u64,
    options: FollowOptions,
) -> BoxStream<'static, Followed> {
    let follower = Follower {
        cache,
        store,
        id: task.id,
        stream: task.events_id(),
        status: task.status,
        message: task.message.clone(),
        next_seq: from_seq,
        options,
        outbox: VecDeque::new(),
        mode: Mode::Start,
    };
    stream::unfold(follower, Follower::next).boxed()
}

enum Mode {
    Start,
    Live(EventStream),
    /// The cache failed; `first` until the row was read once.
    Degraded {
        first: bool,
    },
    Done,
}

struct Follower {
    cache: Arc<dyn StatusCache>,
    store: Arc<dyn TaskStore>,
    id: TaskId,
    /// The cache's id for the followed run's events.
    stream: TaskId,
    /// The last status the client was told from the row (or the row read at the start).
    status: TaskStatus,
    message: Option<String>,
    next_seq: u64,
    options: FollowOptions,
    outbox: VecDeque<Followed>,
    mode: Mode,
}

impl Follower {
    async fn next(mut self) -> Option<(Followed, Self)> {
        loop {
            if let Some(item) = self.outbox.pop_front() {
                return Some((item, self));
            }
            self.mode = match std::mem::replace(&mut self.mode, Mode::Done) {
                Mode::Done => return None,
                Mode::Start => self.start().await,
                Mode::Live(events) => self.live(events).await,
                Mode::Degraded { first } => self.degraded(first).await,
            };
        }
    }

    async fn start(&mut self) -> Mode {
        if self.status.is_terminal() {
            match self.cache.status(self.stream).await {
                Ok(Some(_)) => {}
                // Finished before the cache heard of it, or the cache forgot it.
                Ok(None) => {
                    self.push_row_status();
                    return Mode::Done;
                }
                Err(err) => {
                    self.degrade(&err);
                    self.push_row_status();
                    return Mode::Done;
                }
            }
        }
        match self.cache.subscribe(self.stream, self.next_seq).await {
            Ok(events) => Mode::Live(events),
            Err(err) => self.degrade(&err),
        }
    }

    async fn live(&mut self, mut events: EventStream) -> Mode {
        match tokio::time::timeout(self.options.idle_check, events.next()).await {
            Ok(Some(Ok(event))) => {
                if event.seq > self.next_seq {
                    self.outbox.push_back(Followed::notice(json!({
                        "type": "events_skipped",
                        "from": self.next_seq,
                        "to": event.seq - 1,
                    })));
                }
                self.next_seq = event.seq + 1;
                self.outbox.push_back(Followed {
                    seq: Some(event.seq),
                    data: event.data,
                });
                Mode::Live(events)
            }
            Ok(Some(Err(err))) => self.degrade(&err),
            Ok(None) => Mode::Done,
            Err(_quiet) => match self.store.get(self.id).await {
                Ok(Some(row)) if row.status.is_terminal() => {
                    self.status = row.status;
                    self.message = row.message;
                    self.push_row_status();
                    Mode::Done
                }
                Ok(None) => Mode::Done,
                Ok(Some(_)) => Mode::Live(events),
                Err(err) => {
                    tracing::debug!(task_id = %self.id, error = %err, "cannot re-read a followed task");
                    Mode::Live(events)
                }
            },
        }
    }

    /// Tells the client the live view is gone, and why in general terms (the detail,
    /// which may name hosts, goes to the log).
    fn degrade(&mut self, err: &CacheError) -> Mode {
        counters().fell_back();
        tracing::warn!(task_id = %self.id, error = %err, "event stream falls back to the task store");
        self.outbox.push_back(Followed::notice(json!({
            "type": "degraded",
            "message": "live events are unavailable (the status cache failed); \
                        following the task's status from the store until the cache is back",
        })));
        Mode::Degraded { first: true }
    }

    async fn degraded(&mut self, first: bool) -> Mode {
        if !first {
            tokio::time::sleep(self.options.fallback_poll).await;
            if let Ok(events) = self.cache.subscribe(self.stream, self.next_seq).await {
                self.outbox
                    .push_back(Followed::notice(json!({"type": "live_restored"})));
                return Mode::Live(events);
            }
        }
        match self.store.get(self.id).await {
            Ok(Some(row)) => {
                if first || row.status != self.status {
                    self.status = row.status;
                    self.message = row.message;
                    self.push_row_status();
                }
                if self.status.is_terminal() {
                    return Mode::Done;
                }
            }
            Ok(None) => return Mode::Done,
            Err(err) => {
                tracing::warn!(task_id = %self.id, error = %err, "cannot read a followed task from the store either");
            }
        }
        Mode::Degraded { first: false }
    }

    fn push_row_status(&mut self) {
        self.outbox.push_back(Followed::notice(json!({
            "type": "status",
            "status": self.status.as_str(),
            "message": self.message,
            "source": "store",
        })));
    }
}
