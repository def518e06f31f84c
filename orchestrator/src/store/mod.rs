//! Where tasks live: the source of truth.
//!
//! Implementations: `SqliteTaskStore` (embedded) and, later, a MySQL one. Both keep the
//! same contract, checked by one shared test suite: creation is idempotent per
//! (owner, idempotency key); every status change is a compare-and-set that fails if the
//! row is no longer in the expected status or the move is illegal.

mod sqlite;

use async_trait::async_trait;

use crate::task::{NewTask, Task, TaskId, TaskStatus, TaskUpdate};

pub use sqlite::SqliteTaskStore;

/// The page size `list` uses when the filter's `limit` is 0.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest page `list` returns, whatever the filter asks.
pub const MAX_PAGE_SIZE: u32 = 100;

/// A failure of the store itself (connection, query, corrupt row).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("task store unavailable: {0}")]
    Unavailable(String),
    #[error("task store query failed: {0}")]
    Query(String),
    #[error("stored task {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    /// The listing cursor was not one the store handed out (a client error).
    #[error("invalid page cursor: {0}")]
    InvalidCursor(String),
}

/// Why a compare-and-set did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("task {0} does not exist")]
    NotFound(TaskId),
    /// Someone else moved it first; `actual` is where it is now.
    #[error("task {id} is {actual}, not {expected}")]
    Conflict {
        id: TaskId,
        expected: TaskStatus,
        actual: TaskStatus,
    },
    #[error("task status cannot move from {from} to {to}")]
    Illegal { from: TaskStatus, to: TaskStatus },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only this owner's tasks (the API always sets it).
    pub owner: Option<String>,
    pub status: Option<TaskStatus>,
    /// Page size: 0 means [`DEFAULT_PAGE_SIZE`], more than [`MAX_PAGE_SIZE`] is capped.
    pub limit: u32,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// One page of tasks, newest first.
#[derive(Debug, Clone)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Whether a create made a new task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    /// The idempotency key matched an earlier task, which is returned.
    Existing,
}

#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task in `PENDING`, or returns the earlier task with the same owner and
    /// idempotency key.
    async fn create(&self, new: NewTask) -> Result<(Task, Created), StoreError>;

    async fn get(&self, id: TaskId) -> Result<Option<Task>, StoreError>;

    async fn list(&self, filter: TaskFilter) -> Result<TaskPage, StoreError>;

    /// Moves `id` from `from` to `to` and applies `update`, atomically, only if the row is
    /// still in `from` and the move is legal. Returns the updated task. Fields of `update`
    /// left `None` keep their stored value.
    async fn transition(
        &self,
        id: TaskId,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError>;

    /// Tasks in one of `statuses` last updated before `updated_before` (ms), oldest first:
    /// what the reconciler looks at.
    async fn stale(
        &self,
        statuses: &[TaskStatus],
        updated_before: i64,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError>;

    /// Live tasks whose deadline has passed.
    async fn past_deadline(&self, now: i64, limit: u32) -> Result<Vec<Task>, StoreError>;

    /// Records an API token (only its hash) for `owner`.
    async fn add_token(&self, owner: &str, token_hash: &str) -> Result<(), StoreError>;

    /// The owner of a token hash, if any.
    async fn owner_of_token(&self, token_hash: &str) -> Result<Option<String>, StoreError>;
}
