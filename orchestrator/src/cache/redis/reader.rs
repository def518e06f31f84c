//! One subscriber's walk along a task's Redis stream: what it holds past the reader's
//! position, then bounded blocking waits for more, until the task's stream is closed and
//! drained (see the module above for why `closed` is read before the range).

use std::collections::VecDeque;
use std::sync::Arc;

use ::redis::aio::MultiplexedConnection;
use serde_json::Value;

use super::Inner;
use crate::cache::{CacheError, TaskEvent};
use crate::task::TaskId;

/// Events read per round trip.
const READ_BATCH: usize = 256;

/// `[id, [field, value, ...]]`, as `XRANGE` and `XREAD` return entries.
type Entry = (String, Vec<String>);

pub(super) struct Reader {
    inner: Arc<Inner>,
    id: TaskId,
    /// The lowest seq not yet yielded.
    next_seq: u64,
    pending: VecDeque<TaskEvent>,
    shared: MultiplexedConnection,
    /// Only for `XREAD BLOCK`.
    blocking: MultiplexedConnection,
    /// The task was closed and everything before the close was read; or the reader failed.
    done: bool,
}

impl Reader {
    pub fn new(
        inner: Arc<Inner>,
        id: TaskId,
        from_seq: u64,
        shared: MultiplexedConnection,
        blocking: MultiplexedConnection,
    ) -> Self {
        Self {
            inner,
            id,
            next_seq: from_seq,
            pending: VecDeque::new(),
            shared,
            blocking,
            done: false,
        }
    }

    pub async fn next(mut self) -> Option<(Result<TaskEvent, CacheError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.next_seq = event.seq + 1;
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            match self.refill().await {
                Ok(()) => {}
                Err(err) => {
                    self.done = true;
                    return Some((Err(err), self));
                }
            }
        }
    }

    /// Reads what the stream holds past the position; if nothing and the task is not
    /// closed, waits (a bounded while) for more.
    async fn refill(&mut self) -> Result<(), CacheError> {
        let keys = self.inner.keys(self.id);
        let (closed, entries): (Option<String>, Vec<Entry>) = ::redis::pipe()
            .cmd("GET")
            .arg(&keys.closed)
            .cmd("XRANGE")
            .arg(&keys.events)
            .arg(stream_id(self.next_seq))
            .arg("+")
            .arg("COUNT")
            .arg(READ_BATCH)
            .query_async(&mut self.shared)
            .await
            .map_err(|err| self.inner.failed("read task events", err))?;
        if !entries.is_empty() {
            return self.take(entries);
        }
        if closed.is_some() {
            self.done = true;
            return Ok(());
        }
        // `XREAD` returns entries after the id given: the last one this reader has.
        let after = format!("0-{}", self.next_seq);
        let read: Option<Vec<(String, Vec<Entry>)>> = ::redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_BATCH)
            .arg("BLOCK")
            .arg(self.inner.config.read_block_ms.max(1))
            .arg("STREAMS")
            .arg(&keys.events)
            .arg(after)
            .query_async(&mut self.blocking)
            .await
            .map_err(|err| self.inner.failed("wait for task events", err))?;
        let entries = read
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .collect();
        self.take(entries)
    }

    fn take(&mut self, entries: Vec<Entry>) -> Result<(), CacheError> {
        for (id, fields) in entries {
            let event = parse_entry(&id, &fields).map_err(|reason| CacheError::Corrupt {
                context: format!("event {id} of task {}", self.id),
                source: reason.into(),
            })?;
            if event.seq >= self.next_seq {
                self.pending.push_back(event);
            }
        }
        Ok(())
    }
}

/// The stream id of the event numbered `seq`.
fn stream_id(seq: u64) -> String {
    format!("0-{}", seq + 1)
}

fn parse_entry(id: &str, fields: &[String]) -> Result<TaskEvent, String> {
    let seq = id
        .strip_prefix("0-")
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(|n| n.checked_sub(1))
        .ok_or_else(|| format!("unexpected stream id {id}"))?;
    let data = match fields {
        [name, data] if name == "d" => data,
        _ => return Err("an entry without its `d` field".into()),
    };
    let data: Value = serde_json::from_str(data).map_err(|err| format!("not JSON: {err}"))?;
    Ok(TaskEvent { seq, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_carry_the_event_number_plus_one() {
        assert_eq!(stream_id(0), "0-1");
        let event = parse_entry("0-8", &["d".into(), "{\"a\":1}".into()]).unwrap();
        assert_eq!(event.seq, 7);
        assert_eq!(event.data, serde_json::json!({"a": 1}));
    }

    #[test]
    fn foreign_entries_are_refused() {
        assert!(parse_entry("1700000000000-0", &["d".into(), "1".into()]).is_err());
        assert!(parse_entry("0-0", &["d".into(), "1".into()]).is_err());
        assert!(parse_entry("0-3", &["x".into(), "1".into()]).is_err());
        assert!(parse_entry("0-3", &["d".into(), "{".into()]).is_err());
    }
}
