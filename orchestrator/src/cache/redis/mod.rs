//! The cluster status cache: Redis, shared by every API replica and worker.
//!
//! Per task, under one hash tag (`{prefix}:{task-id}:...`, so a Redis Cluster keeps a
//! task's keys on one slot):
//! - `status`: the latest status, with a TTL (the store stays the truth; an expired or
//!   missing status just means "ask the store");
//! - `events`: a Redis stream holding the task's events. Entry ids are `0-(seq+1)`, so
//!   the event number is the stream id and `Last-Event-ID` resumes with `XRANGE` on any
//!   replica; `seq` is the counter a Lua script bumps while it appends a batch, so
//!   numbers are gapless and a batch contiguous whoever publishes. The stream is capped
//!   (`MAXLEN ~`); a reader asking for trimmed events sees the gap in the numbers;
//! - `closed`: set when the task's stream is finished.
//!
//! A reader takes what the stream holds past its position (`XRANGE`), and when it is
//! caught up waits for more with `XREAD BLOCK` on a connection of its own (a blocking
//! read would hold up every other command on a shared one), a bounded wait at a time.
//! It checks `closed` *before* each `XRANGE`: events published before the close are in
//! the stream by then, so the reader drains them before it ends.
//!
//! Connections are made lazily and remade after a failure, so the service starts and
//! keeps working while Redis is down (every call fails fast; the callers fall back to
//! the store), and picks Redis up again when it returns.

mod config;
mod reader;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::cache::{CacheError, EventStream, RunEvent, StatusCache, WindowHits};
use crate::task::{TaskId, TaskStatus};

pub use config::RedisCacheConfig;
use reader::Reader;

/// Appends a batch: bumps the counter by its size, adds each event under the id
/// `0-(seq+1)`, refreshes the TTLs, returns the first event's number.
const PUBLISH: &str = r"
local n = #ARGV - 2
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n
for i = 1, n do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '0-' .. string.format('%d', first + i), 'd', ARGV[i + 2])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return first
";

/// Appends the events of a run that are past its mark: `KEYS[3]` is a hash of marks by
/// run (one past the highest run event index taken), `ARGV[3]` the run, then pairs of
/// index and event. Returns the first new event's number and how many were added.
const PUBLISH_RUN: &str = r"
local mark = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
local fresh = {}
local top = mark
for i = 4, #ARGV, 2 do
  local index = tonumber(ARGV[i])
  if index >= mark then
    fresh[#fresh + 1] = ARGV[i + 1]
    if index + 1 > top then top = index + 1 end
  end
end
local n = #fresh
if top > mark then
  redis.call('HSET', KEYS[3], ARGV[3], string.format('%d', top))
end
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n
for i = 1, n do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '0-' .. string.format('%d', first + i), 'd', fresh[i])
end
for k = 1, 3 do
  redis.call('EXPIRE', KEYS[k], ARGV[2])
end
return {first, n}
";

/// Counts a hit on `KEYS[1]` in a window of `ARGV[1]` ms opened by its first hit;
/// returns the hits so far and the window's milliseconds left.
const COUNT_HIT: &str = r"
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if hits == 1 or left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {hits, left}
";

/// A [`StatusCache`] on Redis. Clones share one connection.
#[derive(Clone)]
pub struct RedisStatusCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: ::redis::Client,
    config: RedisCacheConfig,
    /// The shared connection; `None` until made, and again after it failed.
    shared: Mutex<Option<MultiplexedConnection>>,
    publish: ::redis::Script,
    publish_run: ::redis::Script,
    count_hit: ::redis::Script,
}

impl std::fmt::Debug for RedisStatusCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStatusCache")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The keys of one task.
pub(super) struct Keys {
    pub status: String,
    pub events: String,
    pub seq: String,
    pub closed: String,
    /// Hash: run name -> one past the highest run event index taken.
    pub runs: String,
}

impl RedisStatusCache {
    /// A cache on the configured server. Nothing is connected yet: the first call
    /// connects, so a server that is down now does not stop the service from starting.
    pub fn new(config: RedisCacheConfig) -> Result<Self, CacheError> {
        let client = config.client()?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                shared: Mutex::new(None),
                publish: ::redis::Script::new(PUBLISH),
                publish_run: ::redis::Script::new(PUBLISH_RUN),
                count_hit: ::redis::Script::new(COUNT_HIT),
            }),
        })
    }

    /// Checks that the server answers (for readiness probes and start-up logs).
    pub async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.inner.connection().await?;
        let pong: String = ::redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|err| self.inner.failed("ping", err))?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(CacheError::Corrupt {
                context: "ping".into(),
                source: format!("unexpected answer {pong:?}").into(),
            })
        }
    }
}

impl Inner {
    fn keys(&self, id: TaskId) -> Keys {
        let base = format!("{}:{{{id}}}", self.config.key_prefix);
        Keys {
            status: format!("{base}:status"),
            events: format!("{base}:events"),
            seq: format!("{base}:seq"),
            closed: format!("{base}:closed"),
            runs: format!("{base}:runs"),
        }
    }

    /// The shared connection, made now if there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, CacheError> {
        let mut shared = self.shared.lock().await;
        if let Some(conn) = shared.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.connect(self.config.response_timeout()).await?;
        *shared = Some(conn.clone());
        Ok(conn)
    }

    /// A new connection whose commands may take up to `response_timeout`.
    async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, CacheError> {
        let config = ::redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout()))
            .set_response_timeout(Some(response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|err| unavailable("connect to Redis", err))
    }

    /// Sorts a failed command, and forgets the shared connection if the failure may have
    /// broken it (the next call connects afresh).
    fn failed(&self, doing: &str, err: ::redis::RedisError) -> CacheError {
        if err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout()
            || err.is_unrecoverable_error()
        {
            if let Ok(mut shared) = self.shared.try_lock() {
                *shared = None;
            }
            return unavailable(doing, err);
        }
        CacheError::Corrupt {
            context: doing.to_string(),
            source: Box::new(err),
        }
    }
}

fn unavailable(doing: &str, err: ::redis::RedisError) -> CacheError {
    CacheError::Unavailable {
        context: doing.to_string(),
        source: Box::new(err),
    }
}

#[async_trait]
impl StatusCache for RedisStatusCache {
    async fn set_status(&self, id: TaskId, status: TaskStatus) -> Result<(), CacheError> {
        let inner = &self.inner;
        let mut conn = inner.connection().await?;
        ::redis::cmd("SET")
            .arg(inner.keys(id).status)
            .arg(status.as_str())
            .arg("EX")
            .arg(inner.config.status_ttl_secs.max(1))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|err| inner.failed("set a task's status", err))
    }

    async fn status(&self, id: TaskId) -> Result<Option<TaskStatus>, CacheError> {
        let inner = &self.inner;
        let mut conn = inner.connection().await?;
        let stored: Option<String> = ::redis::cmd("GET")
            .arg(inner.keys(id).status)
            .query_async(&mut conn)
            .await
            .map_err(|err| inner.failed("read a task's status", err))?;
        stored
            .map(|text| {
                text.parse().map_err(|err| CacheError::Corrupt {
                    context: format!("status of task {id}"),
                    source: format!("{err}").into(),
                })
            })
            .transpose()
    }

    async fn publish_batch(
        &self,
        id: TaskId,
        events: Vec<Value>,
    ) -> Result<Range<u64>, CacheError> {
        let inner = &self.inner;
        let keys = inner.keys(id);
        let mut conn = inner.connection().await?;
        if events.is_empty() {
            let next: Option<u64> = ::redis::cmd("GET")
                .arg(&keys.seq)
                .query_async(&mut conn)
                .await
                .map_err(|err| inner.failed("read a task's event counter", err))?;
            let next = next.unwrap_or(0);
            return Ok(next..next);
        }
        let count = events.len() as u64;
        let mut invocation = inner.publish.key(&keys.seq);
        invocation
            .key(&keys.events)
            .arg(inner.config.max_events_per_task.max(1))
            .arg(inner.config.events_ttl_secs.max(1));
        for event in &events {
            invocation.arg(event.to_string());
        }
        let first: u64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|err| inner.failed("publish task events", err))?;
        Ok(first..first + count)
    }

    async fn publish_run_events(
        &self,
        id: TaskId,
        run: &str,
        events: Vec<RunEvent>,
    ) -> Result<Range<u64>, CacheError> {
        let inner = &self.inner;
        let keys = inner.keys(id);
        let mut conn = inner.connection().await?;
        let mut invocation = inner.publish_run.key(&keys.seq);
        invocation
            .key(&keys.events)
            .key(&keys.runs)
            .arg(inner.config.max_events_per_task.max(1))
            .arg(inner.config.events_ttl_secs.max(1))
            .arg(run);
        for event in &events {
            invocation.arg(event.index).arg(event.data.to_string());
        }
        let (first, added): (u64, u64) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|err| inner.failed("publish a run's events", err))?;
        Ok(first..first + added)
    }

    async fn count_hit(&self, key: &str, window: Duration) -> Result<WindowHits, CacheError> {
        let inner = &self.inner;
        let mut conn = inner.connection().await?;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let (hits, left_ms): (u64, i64) = inner
            .count_hit
            .key(format!("{}:rate:{key}", inner.config.key_prefix))
            .arg(window_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|err| inner.failed("count a rate-limit hit", err))?;
        Ok(WindowHits {
            hits,
            resets_in: Duration::from_millis(u64::try_from(left_ms).unwrap_or(window_ms)),
        })
    }

    async fn subscribe(&self, id: TaskId, from_seq: u64) -> Result<EventStream, CacheError> {
        let inner = Arc::clone(&self.inner);
        let shared = inner.connection().await?;
        // Its own connection for the blocking reads, allowed the block time plus the
        // usual response time.
        let blocking = inner
            .connect(inner.config.response_timeout() + inner.config.read_block())
            .await?;
        let reader = Reader::new(inner, id, from_seq, shared, blocking);
        Ok(futures_util::stream::unfold(reader, Reader::next).boxed())
    }

    async fn close(&self, id: TaskId) -> Result<(), CacheError> {
        let inner = &self.inner;
        let mut conn = inner.connection().await?;
        ::redis::cmd("SET")
            .arg(inner.keys(id).closed)
            .arg(1)
            .arg("EX")
            .arg(inner.config.events_ttl_secs.max(1))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|err| inner.failed("close a task's events", err))
    }
}
