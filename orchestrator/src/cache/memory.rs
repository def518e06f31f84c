//! The embedded status cache: per-task status, event history and live fan-out in memory.
//!
//! Each task has a capped history (the newest events are kept; a reader who asks for
//! older ones sees the gap in the sequence numbers) and a broadcast channel for the live
//! tail. Publishing appends and broadcasts under one lock, and subscribing snapshots the
//! history and joins the broadcast under the same lock, so every event reaches a
//! subscriber exactly once: from the snapshot if it came before, from the channel if
//! after. A subscriber that falls behind the channel catches up from the history.
//!
//! Closing a task drops its broadcast sender, which ends live streams once they drain.
//! Closed tasks stay readable (late readers get the replay) until more than
//! [`MemoryCacheLimits::closed_tasks`] newer ones closed after them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::broadcast;

use crate::cache::{CacheError, StatusCache, TaskEvent};
use crate::task::{TaskId, TaskStatus};

/// How much the cache keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCacheLimits {
    /// Events kept per task; past it the oldest are dropped.
    pub events_per_task: usize,
    /// Live events buffered per task for slow subscribers before they must catch up from
    /// the history.
    pub live_buffer: usize,
    /// Closed tasks kept for late readers; the oldest closed are forgotten first.
    pub closed_tasks: usize,
}

impl Default for MemoryCacheLimits {
    fn default() -> Self {
        Self {
            events_per_task: 10_000,
            live_buffer: 1_024,
            closed_tasks: 1_000,
        }
    }
}

/// A [`StatusCache`] in this process's memory. Clones share one cache.
#[derive(Debug, Clone, Default)]
pub struct MemoryStatusCache {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    limits: MemoryCacheLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tasks: HashMap<TaskId, Entry>,
    /// Closed tasks, oldest first, for forgetting them.
    closed: VecDeque<TaskId>,
}

#[derive(Debug)]
struct Entry {
    status: Option<TaskStatus>,
    history: VecDeque<TaskEvent>,
    next_seq: u64,
    /// `None` once the task is closed.
    live: Option<broadcast::Sender<TaskEvent>>,
}

impl Entry {
    fn new(live_buffer: usize) -> Self {
        Self {
            status: None,
            history: VecDeque::new(),
            next_seq: 0,
            live: Some(broadcast::channel(live_buffer.max(1)).0),
        }
    }

    fn events_from(&self, from_seq: u64) -> VecDeque<TaskEvent> {
        // The history is ordered by seq; skip what the reader already has.
        let skip = self.history.partition_point(|event| event.seq < from_seq);
        self.history.iter().skip(skip).cloned().collect()
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every change under the lock leaves the state whole before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn entry(&mut self, id: TaskId, limits: &MemoryCacheLimits) -> &mut Entry {
        self.tasks
            .entry(id)
            .or_insert_with(|| Entry::new(limits.live_buffer))
    }
}

impl MemoryStatusCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: MemoryCacheLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                state: Mutex::default(),
            }),
        }
    }
}

#[async_trait]
impl StatusCache for MemoryStatusCache {
    async fn set_status(&self, id: TaskId, status: TaskStatus) -> Result<(), CacheError> {
        let mut state = self.inner.state();
        state.entry(id, &self.inner.limits).status = Some(status);
        Ok(())
    }

    async fn status(&self, id: TaskId) -> Result<Option<TaskStatus>, CacheError> {
        Ok(self
            .inner
            .state()
            .tasks
            .get(&id)
            .and_then(|entry| entry.status))
    }

    async fn publish(&self, id: TaskId, data: serde_json::Value) -> Result<u64, CacheError> {
        let limits = self.inner.limits;
        let mut state = self.inner.state();
        let entry = state.entry(id, &limits);
        let event = TaskEvent {
            seq: entry.next_seq,
            data,
        };
        entry.next_seq += 1;
        if let Some(live) = &entry.live {
            // No receiver is not an error: nobody is watching right now.
            let _ = live.send(event.clone());
        }
        entry.history.push_back(event);
        while entry.history.len() > limits.events_per_task {
            entry.history.pop_front();
        }
        Ok(entry.next_seq - 1)
    }

    async fn subscribe(
        &self,
        id: TaskId,
        from_seq: u64,
    ) -> Result<BoxStream<'static, TaskEvent>, CacheError> {
        let limits = self.inner.limits;
        let mut state = self.inner.state();
        let entry = state.entry(id, &limits);
        let reader = Reader {
            inner: Arc::clone(&self.inner),
            id,
            pending: entry.events_from(from_seq),
            live: entry.live.as_ref().map(broadcast::Sender::subscribe),
            next_seq: from_seq,
        };
        drop(state);
        Ok(stream::unfold(reader, Reader::next).boxed())
    }

    async fn close(&self, id: TaskId) -> Result<(), CacheError> {
        let limits = self.inner.limits;
        let mut state = self.inner.state();
        let entry = state.entry(id, &limits);
        if entry.live.take().is_none() {
            return Ok(());
        }
        state.closed.push_back(id);
        while state.closed.len() > limits.closed_tasks {
            if let Some(old) = state.closed.pop_front() {
                state.tasks.remove(&old);
            }
        }
        Ok(())
    }
}

/// One subscriber's position: events already fetched from the history, then the live
/// channel. `next_seq` is the lowest seq not yet yielded, so nothing is yielded twice.
struct Reader {
    inner: Arc<Inner>,
    id: TaskId,
    pending: VecDeque<TaskEvent>,
    live: Option<broadcast::Receiver<TaskEvent>>,
    next_seq: u64,
}

impl Reader {
    async fn next(mut self) -> Option<(TaskEvent, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.seq < self.next_seq {
                    continue;
                }
                self.next_seq = event.seq + 1;
                return Some((event, self));
            }
            let live = self.live.as_mut()?;
            match live.recv().await {
                Ok(event) => self.pending.push_back(event),
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(),
                Err(broadcast::error::RecvError::Closed) => self.live = None,
            }
        }
    }

    /// After missing live events, take them from the history; the channel's next ones
    /// are newer or already seen, and seen ones are skipped by seq.
    fn catch_up(&mut self) {
        let state = self.inner.state();
        if let Some(entry) = state.tasks.get(&self.id) {
            self.pending = entry.events_from(self.next_seq);
        }
    }
}
