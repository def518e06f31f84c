//! The embedded status cache: per-task status, event history and live fan-out in memory.
//!
//! Each task has a history of events in seq order and a `watch` channel carrying "there is
//! more" to its subscribers; the events themselves live only in the history, so a slow
//! subscriber costs a position, never a buffer of copies. Publishing appends and signals
//! under one lock; a subscriber marks the signal seen and reads the history under the
//! same lock, so no event is missed or read twice.
//!
//! Memory is bounded in bytes ([`MemoryCacheLimits::max_bytes`], measured as the events'
//! heap size) and in count per task. Past the byte budget, closed tasks are forgotten
//! first (oldest closed first, status and history), then the oldest events of the largest
//! open history; a reader who asks for events no longer held sees the gap in the seqs.
//! Closing a task drops its signal, which ends live streams once they drain.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use tokio::sync::watch;

use super::windows::HitWindows;
use crate::cache::{CacheError, EventStream, RunEvent, StatusCache, TaskEvent, WindowHits};
use crate::task::{TaskId, TaskStatus};

/// Events a subscriber copies out of the history per visit to the lock.
const READ_BATCH: usize = 256;

/// How much the cache keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCacheLimits {
    /// Bytes of event history held across all tasks (the events' estimated heap size).
    pub max_bytes: usize,
    /// Events kept per task; past it the oldest are dropped.
    pub events_per_task: usize,
    /// Closed tasks kept for late readers; the oldest closed are forgotten first.
    pub closed_tasks: usize,
}

impl Default for MemoryCacheLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            events_per_task: 10_000,
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
    /// Rate-limit windows, apart from the events (no contention with publishers).
    windows: HitWindows,
}

#[derive(Debug, Default)]
struct State {
    tasks: HashMap<TaskId, Entry>,
    /// Closed tasks, oldest first, for forgetting them.
    closed: VecDeque<TaskId>,
    /// Sum of every entry's `bytes`.
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    status: Option<TaskStatus>,
    /// Events with their estimated size, ordered by seq.
    history: VecDeque<(TaskEvent, usize)>,
    bytes: usize,
    next_seq: u64,
    /// Per run (by name): one past the highest run event index taken, so a replay of the
    /// run's events (a re-attached worker) adds only what is new.
    run_marks: HashMap<String, u64>,
    /// Holds `next_seq`; `None` once the task is closed.
    signal: Option<watch::Sender<u64>>,
}

impl Entry {
    fn new() -> Self {
        Self {
            status: None,
            history: VecDeque::new(),
            bytes: 0,
            next_seq: 0,
            run_marks: HashMap::new(),
            signal: Some(watch::channel(0).0),
        }
    }

    fn events_from(&self, from_seq: u64, max: usize) -> VecDeque<TaskEvent> {
        // The history is ordered by seq; skip what the reader already has.
        let skip = self
            .history
            .partition_point(|(event, _)| event.seq < from_seq);
        self.history
            .iter()
            .skip(skip)
            .take(max)
            .map(|(event, _)| event.clone())
            .collect()
    }

    /// Drops the oldest event; returns its size.
    fn pop_oldest(&mut self) -> Option<usize> {
        let (_, size) = self.history.pop_front()?;
        self.bytes -= size;
        Some(size)
    }
}

/// The approximate heap size of a stored event: its JSON tree plus the history slot.
fn event_bytes(data: &Value) -> usize {
    std::mem::size_of::<(TaskEvent, usize)>() + value_heap_bytes(data)
}

/// What a `serde_json::Value` owns on the heap (its own slot excluded): string buffers,
/// array slots and map entries (a B-tree entry is taken as key, value and two words).
fn value_heap_bytes(value: &Value) -> usize {
    const SLOT: usize = std::mem::size_of::<Value>();
    match value {
        Value::String(text) => text.capacity(),
        Value::Array(items) => {
            items.capacity() * SLOT + items.iter().map(value_heap_bytes).sum::<usize>()
        }
        Value::Object(map) => map
            .iter()
            .map(|(key, item)| {
                std::mem::size_of::<String>()
                    + key.capacity()
                    + SLOT
                    + 2 * std::mem::size_of::<usize>()
                    + value_heap_bytes(item)
            })
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every change under the lock leaves the state whole before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Appends events to `id`'s history, numbering them, and wakes its subscribers.
    fn append(&mut self, id: TaskId, events: Vec<Value>, limits: MemoryCacheLimits) -> Range<u64> {
        let entry = self.entry(id);
        let first = entry.next_seq;
        let mut added = 0;
        for data in events {
            let size = event_bytes(&data);
            let seq = entry.next_seq;
            entry.next_seq += 1;
            entry.history.push_back((TaskEvent { seq, data }, size));
            entry.bytes += size;
            added += size;
        }
        let mut trimmed = 0;
        while entry.history.len() > limits.events_per_task {
            trimmed += entry.pop_oldest().unwrap_or(0);
        }
        let range = first..entry.next_seq;
        if !range.is_empty()
            && let Some(signal) = &entry.signal
        {
            signal.send_replace(range.end);
        }
        self.bytes = self.bytes + added - trimmed;
        self.shed(limits.max_bytes);
        range
    }

    fn entry(&mut self, id: TaskId) -> &mut Entry {
        self.tasks.entry(id).or_insert_with(Entry::new)
    }

    fn forget(&mut self, id: TaskId) {
        if let Some(entry) = self.tasks.remove(&id) {
            self.bytes -= entry.bytes;
        }
    }

    /// Sheds history until the byte budget holds: closed tasks first, then the oldest
    /// events of the largest open history.
    fn shed(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            if let Some(old) = self.closed.pop_front() {
                self.forget(old);
                continue;
            }
            let largest = self
                .tasks
                .values_mut()
                .filter(|entry| !entry.history.is_empty())
                .max_by_key(|entry| entry.bytes);
            let Some(entry) = largest else { return };
            while self.bytes > max_bytes {
                let Some(size) = entry.pop_oldest() else {
                    break;
                };
                self.bytes -= size;
            }
        }
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
                windows: HitWindows::default(),
            }),
        }
    }

    /// The estimated bytes of event history held now (for metrics and tests).
    pub fn held_bytes(&self) -> usize {
        self.inner.state().bytes
    }
}

#[async_trait]
impl StatusCache for MemoryStatusCache {
    async fn set_status(&self, id: TaskId, status: TaskStatus) -> Result<(), CacheError> {
        self.inner.state().entry(id).status = Some(status);
        Ok(())
    }

    async fn status(&self, id: TaskId) -> Result<Option<TaskStatus>, CacheError> {
        let state = self.inner.state();
        Ok(state.tasks.get(&id).and_then(|entry| entry.status))
    }

    async fn publish_batch(
        &self,
        id: TaskId,
        events: Vec<Value>,
    ) -> Result<Range<u64>, CacheError> {
        let limits = self.inner.limits;
        Ok(self.inner.state().append(id, events, limits))
    }

    async fn publish_run_events(
        &self,
        id: TaskId,
        run: &str,
        events: Vec<RunEvent>,
    ) -> Result<Range<u64>, CacheError> {
        let limits = self.inner.limits;
        let mut state = self.inner.state();
        let entry = state.entry(id);
        let mark = entry.run_marks.get(run).copied().unwrap_or(0);
        let Some(top) = events.iter().map(|event| event.index + 1).max() else {
            return Ok(entry.next_seq..entry.next_seq);
        };
        if top > mark {
            entry.run_marks.insert(run.to_string(), top);
        }
        let fresh = events
            .into_iter()
            .filter(|event| event.index >= mark)
            .map(|event| event.data)
            .collect();
        Ok(state.append(id, fresh, limits))
    }

    async fn count_hit(&self, key: &str, window: Duration) -> Result<WindowHits, CacheError> {
        Ok(self.inner.windows.hit(key, window, Instant::now()))
    }

    async fn subscribe(&self, id: TaskId, from_seq: u64) -> Result<EventStream, CacheError> {
        let mut state = self.inner.state();
        let entry = state.entry(id);
        let reader = Reader {
            inner: Arc::clone(&self.inner),
            id,
            pending: VecDeque::new(),
            signal: entry.signal.as_ref().map(watch::Sender::subscribe),
            next_seq: from_seq,
        };
        drop(state);
        Ok(stream::unfold(reader, Reader::next).boxed())
    }

    async fn close(&self, id: TaskId) -> Result<(), CacheError> {
        let limits = self.inner.limits;
        let mut state = self.inner.state();
        if state.entry(id).signal.take().is_none() {
            return Ok(());
        }
        state.closed.push_back(id);
        while state.closed.len() > limits.closed_tasks {
            if let Some(old) = state.closed.pop_front() {
                state.forget(old);
            }
        }
        Ok(())
    }
}

/// One subscriber's position: `next_seq` is the lowest seq not yet yielded, so nothing
/// is yielded twice; `pending` holds the batch last copied out of the history.
struct Reader {
    inner: Arc<Inner>,
    id: TaskId,
    pending: VecDeque<TaskEvent>,
    /// `None` once the task is closed (or was closed when subscribing).
    signal: Option<watch::Receiver<u64>>,
    next_seq: u64,
}

impl Reader {
    async fn next(mut self) -> Option<(Result<TaskEvent, CacheError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.next_seq = event.seq + 1;
                return Some((Ok(event), self));
            }
            let open = self.refill();
            if !self.pending.is_empty() {
                continue;
            }
            if !open {
                return None;
            }
            let signal = self.signal.as_mut()?;
            if signal.changed().await.is_err() {
                // Closed (or forgotten): read what is left, then end.
                self.signal = None;
            }
        }
    }

    /// Copies the next events out of the history; returns whether the task is still
    /// open (more may come). The signal is marked seen under the lock first, so a publish
    /// after this read wakes the reader.
    fn refill(&mut self) -> bool {
        let state = self.inner.state();
        if let Some(signal) = self.signal.as_mut() {
            signal.borrow_and_update();
        }
        let Some(entry) = state.tasks.get(&self.id) else {
            return false;
        };
        self.pending = entry.events_from(self.next_seq, READ_BATCH);
        entry.signal.is_some() && self.signal.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_estimate_grows_with_the_content() {
        let small = event_bytes(&serde_json::json!({"type": "message"}));
        let text = "x".repeat(10_000);
        let large = event_bytes(&serde_json::json!({"type": "message", "text": text}));
        assert!(large >= small + 10_000, "{small} {large}");
        let nested = event_bytes(&serde_json::json!({"a": [1, 2, {"b": "cc"}]}));
        assert!(nested > event_bytes(&serde_json::json!({"a": []})));
    }
}
