//! The status cache and live event fan-out.
//!
//! Readers poll status far more often than it changes, and SSE clients want each agent
//! event as it happens, including late readers who need the story from the start. The
//! cache holds the latest status per task and an ordered, capped history of events per
//! task with a live tail. It is a cache: the store stays the truth. Implementations:
//! `MemoryStatusCache` (embedded), Redis (cluster).

mod memory;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use crate::task::{TaskId, TaskStatus};

pub use memory::{MemoryCacheLimits, MemoryStatusCache};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("status cache unavailable: {0}")]
    Unavailable(String),
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

    async fn status(&self, id: TaskId) -> Result<Option<TaskStatus>, CacheError>;

    /// Appends an event to the task's history and wakes its subscribers.
    async fn publish(&self, id: TaskId, data: serde_json::Value) -> Result<u64, CacheError>;

    /// Every event from `from_seq` on: the history first, then live ones as they come.
    /// The stream ends after `close` was called for the task and the history is drained.
    async fn subscribe(
        &self,
        id: TaskId,
        from_seq: u64,
    ) -> Result<BoxStream<'static, TaskEvent>, CacheError>;

    /// Marks the task's stream finished (terminal status reached).
    async fn close(&self, id: TaskId) -> Result<(), CacheError>;
}
