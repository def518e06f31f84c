//! Where tasks live: the source of truth.
//!
//! Implementations: `SqliteTaskStore` (embedded) and `MySqlTaskStore` (cluster). Both keep the
//! same contract, checked by one shared test suite (`tests/store_contract`):
//!
//! - **Creation** is idempotent per (owner, idempotency key). A new task is stored
//!   `QUEUED` together with an outbox entry, in one transaction: once `create` returned,
//!   the task will reach the queue even if the caller dies before enqueueing it (a relay
//!   publishes outbox entries and removes them, [`TaskStore::outbox_done`]).
//! - **Status changes** are compare-and-set: they fail if the row is no longer in the
//!   expected status or the move is illegal ([`TaskStatus::can_move_to`]).
//! - **Leases.** A worker claims a task ([`TaskStore::claim`]) and gets a [`Lease`]:
//!   holder, attempt and expiry. The store computes the expiry from its own clock (the
//!   caller passes a duration), so processes with skewed clocks agree on it. The holder
//!   renews it ([`TaskStore::renew`]); every write that advances or finishes the run is
//!   fenced on it ([`TaskStore::advance`]: the row must still name this holder and
//!   attempt), so a worker that lost its lease cannot change the task any more. A task
//!   whose lease expired (or was released) may be taken over, by a worker re-attaching
//!   to its run or by the reconciler ([`TaskStore::take_over`]). A terminal status ends
//!   the lease.
//! - **Repairs** are found by one bounded query per kind ([`Due`]), oldest first, so no
//!   kind of stuck task can starve another; so are finished tasks whose files are past
//!   their retention ([`Due::Expired`], then [`TaskStore::mark_purged`]).
//! - **Counts** ([`TaskStore::live_tasks`], [`TaskStore::count_live`]) read live rows
//!   only, through an index, never the finished history.
//! - **Tokens** are kept as hashes; a revoked one stays listed and is refused
//!   ([`TaskStore::owner_of_token`] no longer answers for it).

/// The columns a [`Task`](crate::task::Task) is read from; a macro so the SQL built with it stays
/// `&'static str`, which sqlx takes without an `AssertSqlSafe`.
macro_rules! task_columns {
    () => {
        "id, owner, input_type, git_url, git_ref, zip_name, zip_key, description, \
         target_file, model, max_turns, max_tokens, timeout_secs, status, message, pr_url, \
         attempt, result_json, runner_ref, idempotency_key, created_at, updated_at, deadline_at, \
         lease_holder, lease_expires_at, run_number, follow_up, best_of, check_command, chosen_run, \
         setup"
    };
}

mod error;
mod mysql;
pub mod retry;
mod sqlite;

use std::time::Duration;

use async_trait::async_trait;

use crate::pr::{PrOutcome, PullRequestAsk, PullRequestRecord};
use crate::task::{NewTask, RunRecord, Task, TaskId, TaskStatus, TaskUpdate};

pub(crate) use error::sql_error;
pub use error::{BoxError, StoreError, TransitionError};
pub use mysql::{MySqlConfig, MySqlTaskStore};
pub use sqlite::SqliteTaskStore;

/// The page size `list` uses when the filter's `limit` is 0.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest page `list` returns, whatever the filter asks.
pub const MAX_PAGE_SIZE: u32 = 100;

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

/// A holder's claim on a task: what every fenced write names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub task_id: TaskId,
    /// Unique per acquisition (a worker's id plus a fresh suffix), so a process that lost
    /// a lease and took the task again cannot write with the old one.
    pub holder: String,
    pub attempt: u32,
    /// By the store's clock, ms since the epoch.
    pub expires_at: i64,
}

impl Lease {
    /// The lease a row records, if it names a holder.
    pub fn of(task: &Task) -> Option<Lease> {
        Some(Lease {
            task_id: task.id,
            holder: task.lease_holder.clone()?,
            attempt: task.attempt,
            expires_at: task.lease_expires_at?,
        })
    }
}

/// One kind of repair the reconciler looks for; each is its own bounded query.
///
/// An `older_than` is inclusive, to the millisecond: `Duration::ZERO` means everything
/// up to now, entries written in the current millisecond included, so a caller never
/// has to wait for the clock to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Outbox entries at least this old: created, maybe never enqueued.
    Outbox { older_than: Duration },
    /// `QUEUED` and not touched for this long (not claimed, not re-sent): the message may
    /// be lost.
    Queued { older_than: Duration },
    /// `PROCESSING` or `DOWNLOADING_CODE` with no live lease: preparation was abandoned.
    Preparing,
    /// `RUNNING_AGENT` or `UPLOADING_RESULTS` with no live lease: nobody watches the run.
    Running,
    /// Finished at least this long ago and its files not yet deleted
    /// ([`TaskStore::mark_purged`]).
    Expired { older_than: Duration },
    /// A pull request nobody is opening: `OPENING` for longer than `stale` (its opener
    /// died), or still `REQUESTED` though its task finished longer than `stale` ago (the
    /// worker died before opening it).
    PullRequests { stale: Duration },
}

/// An API token as an operator sees it: never the token, nor its whole hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The first [`TOKEN_ID_LEN`] hex digits of the token's hash: what `revoke` takes.
    pub id: String,
    pub owner: String,
    /// ms since the epoch.
    pub created_at: i64,
    /// ms since the epoch; `None` while the token works.
    pub revoked_at: Option<i64>,
}

/// How many hex digits of a token's hash name it (64 bits: no two tokens share one).
pub const TOKEN_ID_LEN: usize = 16;

/// The statuses a worker holds a lease in.
pub const LEASED: [TaskStatus; 4] = [
    TaskStatus::Processing,
    TaskStatus::DownloadingCode,
    TaskStatus::RunningAgent,
    TaskStatus::UploadingResults,
];

#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task in `QUEUED` with its outbox entry (one transaction), or returns
    /// the earlier task with the same owner and idempotency key (no second entry).
    async fn create(&self, new: NewTask) -> Result<(Task, Created), StoreError>;

    async fn get(&self, id: TaskId) -> Result<Option<Task>, StoreError>;

    async fn list(&self, filter: TaskFilter) -> Result<TaskPage, StoreError>;

    /// Moves `id` from `from` to `to` and applies `update`, atomically, only if the row is
    /// still in `from` and the move is legal. Not fenced: for tasks nobody holds, and for
    /// a cancel, which wins over any lease (the holder's next fenced write then fails).
    /// A terminal `to` ends the lease.
    async fn transition(
        &self,
        id: TaskId,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError>;

    /// Claims a task for `holder` for `ttl`, adding one to its attempt: `QUEUED` moves to
    /// `PROCESSING`; a task released before its agent started (`PROCESSING` or
    /// `DOWNLOADING_CODE` with no live lease) keeps its status, and its run name is
    /// cleared (the new attempt launches under a new one).
    async fn claim(
        &self,
        id: TaskId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError>;

    /// Takes over a task in `status` at `attempt` that no live lease holds, keeping its
    /// attempt: a worker re-attaching to a running run, or the reconciler repairing it.
    async fn take_over(
        &self,
        id: TaskId,
        status: TaskStatus,
        attempt: u32,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError>;

    /// Extends the lease to `ttl` from now. Fails with `LeaseLost` once the row names
    /// another holder or attempt, or the task finished.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, TransitionError>;

    /// The fenced compare-and-set: as [`TaskStore::transition`], and only while `lease`
    /// holds the task. `from == to` records `update` without a move (the run's name
    /// before launch, say).
    async fn advance(
        &self,
        lease: &Lease,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError>;

    /// Gives the task up unfinished: no holder any more, so anyone may claim or take it
    /// over at once; the reconciler looks at it again once `look_again_in` passed.
    async fn release(&self, lease: &Lease, look_again_in: Duration) -> Result<(), TransitionError>;

    /// Up to `limit` tasks needing the repair `due`, oldest first.
    async fn due(&self, due: Due, limit: u32) -> Result<Vec<TaskId>, StoreError>;

    /// Records that a `QUEUED` task's message was sent again: it leaves
    /// [`Due::Queued`] for another period. False if it is no longer `QUEUED`.
    async fn requeued(&self, id: TaskId) -> Result<bool, StoreError>;

    /// Removes the task's outbox entry once its message is on the queue.
    async fn outbox_done(&self, id: TaskId) -> Result<(), StoreError>;

    /// Records an API token (only its hash) for `owner`.
    async fn add_token(&self, owner: &str, token_hash: &str) -> Result<(), StoreError>;

    /// The owner of a token hash, if any and not revoked.
    async fn owner_of_token(&self, token_hash: &str) -> Result<Option<String>, StoreError>;

    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;

    /// Revokes the token whose id ([`TokenInfo::id`]) is `id`. `None` when no token has
    /// that id; a token revoked before keeps its first revocation time.
    async fn revoke_token(&self, id: &str) -> Result<Option<TokenInfo>, StoreError>;

    /// How many of `owner`'s tasks are not finished.
    async fn live_tasks(&self, owner: &str) -> Result<u64, StoreError>;

    /// Unfinished tasks by status (statuses with none left out).
    async fn count_live(&self) -> Result<Vec<(TaskStatus, u64)>, StoreError>;

    /// Records that a finished task's files were deleted: it leaves [`Due::Expired`].
    async fn mark_purged(&self, id: TaskId) -> Result<(), StoreError>;

    /// The pull request `id` asked for, if any.
    async fn pull_request(&self, id: TaskId) -> Result<Option<PullRequestRecord>, StoreError>;

    /// Asks (again) for a pull request of a task: the record becomes `REQUESTED` with its
    /// error cleared; fields left `None` keep their stored value. False when it cannot be
    /// asked for now: being opened (unless its opener is older than `stale`: gone), or
    /// already open.
    async fn ask_pull_request(
        &self,
        id: TaskId,
        ask: PullRequestAsk,
        stale: Duration,
    ) -> Result<bool, StoreError>;

    /// Claims a `REQUESTED` pull request (or one `OPENING` for longer than `stale`) to
    /// open it: it becomes `OPENING`, one more try. `None` when there is nothing to open
    /// or someone else is opening it.
    async fn start_pull_request(
        &self,
        id: TaskId,
        stale: Duration,
    ) -> Result<Option<PullRequestRecord>, StoreError>;

    /// Records how opening ended (only from `OPENING`; false otherwise). An opened pull
    /// request's URL also becomes the task's `pr_url`; the sealed token is dropped unless
    /// the outcome is a failure (which may be retried).
    async fn finish_pull_request(
        &self,
        id: TaskId,
        outcome: &PrOutcome,
    ) -> Result<bool, StoreError>;
    /// Continues a finished task with a follow-up message, in one transaction: the
    /// current run (status, message, result) is archived as a [`RunRecord`], and the row
    /// goes back to `QUEUED` as the next run (`run_number + 1`, `follow_up` set; message,
    /// result, run name, deadline and lease cleared; the attempt counter goes on, so run
    /// names stay unique) with its outbox entry. The one move out of a terminal status:
    /// only from `COMPLETED` or `FAILED` (`Conflict` otherwise), and not once the task's
    /// files were deleted (`Refused`).
    async fn follow_up(&self, id: TaskId, message: &str) -> Result<Task, TransitionError>;

    /// The runs follow-ups continued, oldest first; the current run is the row itself.
    /// For a best-of-N task: its ended attempts, the last one too once it ended.
    async fn past_runs(&self, id: TaskId) -> Result<Vec<RunRecord>, StoreError>;

    /// Best-of-N: records how the current attempt ended in the task's runs (replacing
    /// an earlier record of it, so a finish redone after a crash is harmless), fenced on
    /// `lease` with the row in `from`, and in the same transaction either queues the
    /// next attempt ([`AttemptNext::Queue`]: the row back to `QUEUED` as `run_number +
    /// 1`, its message, result, run name, deadline and lease cleared, with its outbox
    /// entry) or names the attempt whose outputs are the task's
    /// ([`AttemptNext::Choose`]; the caller then finishes the task with a fenced
    /// advance).
    async fn end_attempt(
        &self,
        lease: &Lease,
        from: TaskStatus,
        ended: &EndedRun,
        next: AttemptNext,
    ) -> Result<Task, TransitionError>;
}

/// How a best-of-N attempt ended, as [`TaskStore::end_attempt`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedRun {
    pub status: TaskStatus,
    pub message: Option<String>,
    pub result: Option<serde_json::Value>,
}

/// What follows an ended best-of-N attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptNext {
    /// Another attempt, from the same starting code.
    Queue,
    /// None: this attempt (a run number) is the task's.
    Choose(u32),
}

/// Whether `task` (read under [`TaskStore::end_attempt`]'s lock) may end its attempt:
/// `lease` still holds it and it is in `from`. Gives the record's result as JSON text.
pub(crate) fn check_attempt_end(
    task: &Task,
    lease: &Lease,
    from: TaskStatus,
    ended: &EndedRun,
) -> Result<Option<String>, TransitionError> {
    let held = task.lease_holder.as_deref() == Some(lease.holder.as_str())
        && task.attempt == lease.attempt;
    if !held {
        return Err(TransitionError::LeaseLost {
            id: task.id,
            status: task.status,
        });
    }
    if task.status != from {
        return Err(TransitionError::Conflict {
            id: task.id,
            expected: from,
            actual: task.status,
        });
    }
    if !ended.status.is_terminal() {
        return Err(TransitionError::Illegal {
            from,
            to: ended.status,
        });
    }
    Ok(ended
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| StoreError::query("encode an attempt's result", err))?)
}

/// Whether `task` (read under the follow-up's lock, `purged_at` beside it) may take a
/// follow-up, on SQLite and MySQL alike: only a `COMPLETED` or `FAILED` task whose files
/// are still kept. Gives the finished run's result as it is archived (JSON text).
pub(crate) fn check_follow_up(
    task: &Task,
    purged_at: Option<i64>,
) -> Result<Option<String>, TransitionError> {
    let id = task.id;
    if !matches!(task.status, TaskStatus::Completed | TaskStatus::Failed) {
        return Err(TransitionError::Conflict {
            id,
            expected: TaskStatus::Completed,
            actual: task.status,
        });
    }
    if purged_at.is_some() {
        return Err(TransitionError::Store(StoreError::Refused(format!(
            "task {id}'s files were deleted after its retention period; it cannot be continued"
        ))));
    }
    if task.is_best_of() {
        return Err(TransitionError::Store(StoreError::Refused(format!(
            "task {id} made best-of-{} attempts; its runs are attempts, not a conversation, \
             so it takes no follow-up message: start a new task from its diff instead",
            task.best_of.attempts
        ))));
    }
    Ok(task
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| StoreError::query("encode a run's result", err))?)
}

/// Reads a [`RunRecord`] from a `task_runs` row, on SQLite and MySQL alike.
pub(crate) fn run_from_row<R>(row: &R) -> Result<RunRecord, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let corrupt = |reason: String| StoreError::Corrupt {
        id: row.try_get::<String, _>("task_id").unwrap_or_default(),
        reason,
    };
    let get_text = |name: &str| {
        row.try_get::<Option<String>, _>(name)
            .map_err(|err| corrupt(format!("column {name}: {err}")))
    };
    let get_int = |name: &str| {
        row.try_get::<i64, _>(name)
            .map_err(|err| corrupt(format!("column {name}: {err}")))
    };
    let run_number = u32::try_from(get_int("run_number")?)
        .map_err(|_| corrupt("run_number out of range".into()))?;
    let status = get_text("status")?
        .unwrap_or_default()
        .parse()
        .map_err(|err| corrupt(format!("{err}")))?;
    let result = get_text("result_json")?
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|err| corrupt(format!("result_json is not JSON: {err}")))?;
    Ok(RunRecord {
        run_number,
        instruction: get_text("instruction")?.unwrap_or_default(),
        status,
        message: get_text("message")?,
        result,
        finished_at: get_int("finished_at")?,
    })
}

/// The columns [`run_from_row`] reads.
pub(crate) const RUN_COLUMNS: &str =
    "task_id, run_number, instruction, status, message, result_json, finished_at";

/// A duration as whole milliseconds, for arithmetic on stored times.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
