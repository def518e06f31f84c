//! What can go wrong at the store's seam, sorted so callers know what to do about it.
//!
//! A [`StoreError`] keeps the database's own error as its source and says whether trying
//! again can help ([`StoreError::is_transient`]: a lost connection, a deadlock, a lock
//! wait or a busy database). A [`TransitionError`] says why a compare-and-set did not
//! happen: someone else moved the task, the lease the write was fenced on is gone, or
//! the store itself failed.

use crate::task::{TaskId, TaskStatus};

/// The database's own error, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection lost or refused, deadlock, lock wait timeout, database busy: the same
    /// call may well succeed a moment later.
    #[error("task store unavailable: cannot {doing}: {source}")]
    Unavailable {
        doing: String,
        #[source]
        source: BoxError,
    },
    /// The query itself failed; retrying it will not help.
    #[error("task store query failed: cannot {doing}: {source}")]
    Query {
        doing: String,
        #[source]
        source: BoxError,
    },
    #[error("stored task {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    /// The listing cursor was not one the store handed out (a client error).
    #[error("invalid page cursor: {0}")]
    InvalidCursor(String),
    /// A value the store cannot hold (a limit past its column's range, a token already
    /// given to another owner): the caller's mistake, with what to do instead.
    #[error("{0}")]
    Refused(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again (see [`crate::store::retry`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// A transient failure while `doing` something.
    pub fn unavailable(doing: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            doing: doing.into(),
            source: source.into(),
        }
    }

    /// A permanent failure while `doing` something.
    pub fn query(doing: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Query {
            doing: doing.into(),
            source: source.into(),
        }
    }
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
    /// The lease the write was fenced on no longer holds the task: it expired and someone
    /// took the task over, or the task was finished or cancelled. `status` is where the
    /// task is now.
    #[error("task {id} is no longer held by this lease (it is {status})")]
    LeaseLost { id: TaskId, status: TaskStatus },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TransitionError {
    /// Whether the same call may succeed if tried again.
    pub fn is_transient(&self) -> bool {
        matches!(self, TransitionError::Store(err) if err.is_transient())
    }
}

/// Sorts an sqlx failure into "try again later" and "this query is wrong", naming what
/// was being done. `busy_code` recognises the database's own transient error codes
/// (SQLite: busy and locked; MySQL: deadlock and lock wait timeout).
pub(crate) fn sql_error(doing: &str, err: sqlx::Error, busy_code: fn(&str) -> bool) -> StoreError {
    let transient = match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| busy_code(&code)),
        _ => false,
    };
    if transient {
        StoreError::unavailable(doing, err)
    } else {
        StoreError::query(doing, err)
    }
}
