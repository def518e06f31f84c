//! The embedded task store: one SQLite file beside the server.
//!
//! SQLite in WAL mode lets readers (status polls, listings) run beside the one writer;
//! writes serialize on the database lock, waiting up to the busy timeout rather than
//! failing. Status changes are a single conditional `UPDATE ... WHERE status = ?`, so the
//! compare-and-set is the database's, not ours; lease operations ([`lease`]) add the
//! holder and attempt to the `WHERE`. The store's clock is this machine's (the database
//! file lives here). The schema lives in `migrations/sqlite/`, embedded in the binary
//! and applied on open.

mod best_of;
mod lease;
mod pull_requests;
pub(super) mod rows;
mod runs;
mod tokens;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use self::rows::{Cursor, NewTaskRow, TASK_COLUMNS, task_from_row};
use crate::pr::{PrOutcome, PullRequestAsk, PullRequestRecord};
use crate::store::{
    Created, DEFAULT_PAGE_SIZE, Due, Lease, MAX_PAGE_SIZE, StoreError, TaskFilter, TaskPage,
    TaskStore, TokenInfo, TransitionError, millis, sql_error,
};
use crate::task::{NewTask, Task, TaskId, TaskStatus, TaskUpdate, now_ms};

/// The schema, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for the database lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections for a file-backed store: readers run in parallel under WAL.
const FILE_POOL_SIZE: u32 = 8;

/// A [`TaskStore`] on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteTaskStore {
    pool: SqlitePool,
}

impl SqliteTaskStore {
    /// Opens (creating if needed, with its parent folder) the database file at `path` and
    /// brings its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|err| {
                StoreError::unavailable(
                    format!(
                        "create the folder {} for the task database",
                        parent.display()
                    ),
                    err,
                )
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|err| {
                StoreError::unavailable(format!("open the task database {}", path.display()), err)
            })?;
        Self::migrated(pool).await
    }

    /// A private database that lives as long as this store (and its clones): for tests.
    ///
    /// It runs on one connection, because each SQLite in-memory connection would otherwise
    /// see its own empty database; operations therefore run one at a time.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|err| StoreError::query("open an in-memory database", err))?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|err| StoreError::unavailable("open an in-memory database", err))?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self, StoreError> {
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|err| StoreError::query("migrate the task database", err))?;
        Ok(Self { pool })
    }

    /// Waits for in-flight queries and closes every connection (the WAL is checkpointed).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Where the task is now and who holds it, to explain a compare-and-set that did not
    /// happen.
    async fn current(&self, id: TaskId) -> Result<Option<Current>, StoreError> {
        let row: Option<(String, Option<String>, i64)> =
            sqlx::query_as("SELECT status, lease_holder, attempt FROM tasks WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(|err| db_error("read a task's status", err))?;
        row.map(|(status, holder, attempt)| {
            Ok(Current {
                status: status.parse().map_err(|err| StoreError::Corrupt {
                    id: id.to_string(),
                    reason: format!("{err}"),
                })?,
                holder,
                attempt,
            })
        })
        .transpose()
    }

    /// Why a compare-and-set from `from` changed no row.
    async fn explain(&self, id: TaskId, from: TaskStatus) -> TransitionError {
        match self.current(id).await {
            Err(err) => err.into(),
            Ok(None) => TransitionError::NotFound(id),
            Ok(Some(now)) => TransitionError::Conflict {
                id,
                expected: from,
                actual: now.status,
            },
        }
    }
}

/// A row's status and lease, read back after a compare-and-set missed.
struct Current {
    status: TaskStatus,
    holder: Option<String>,
    attempt: i64,
}

#[async_trait]
impl TaskStore for SqliteTaskStore {
    async fn create(&self, new: NewTask) -> Result<(Task, Created), StoreError> {
        let columns = NewTaskRow::new(&new)?;
        let id = TaskId::new().to_string();
        let now = now_ms();
        // `IMMEDIATE` takes the write lock up front, so two creates with one key queue on
        // the busy timeout instead of one failing on a lock upgrade.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|err| db_error("start creating a task", err))?;
        let inserted = sqlx::query(insert_task())
            .bind(&id)
            .bind(&new.owner)
            .bind(columns.input_type)
            .bind(columns.git_url)
            .bind(columns.git_ref)
            .bind(columns.zip_name)
            .bind(columns.zip_key)
            .bind(&new.description)
            .bind(&new.target_file)
            .bind(&new.model)
            .bind(columns.max_turns)
            .bind(columns.max_tokens)
            .bind(columns.timeout_secs)
            .bind(TaskStatus::Queued.as_str())
            .bind(&new.idempotency_key)
            .bind(now)
            .bind(now)
            .bind(i64::from(new.best_of.attempts.max(1)))
            .bind(&new.best_of.check)
            .bind(&new.setup)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|err| db_error("create a task", err))?;
        let (row, created) = match inserted {
            Some(row) => {
                sqlx::query("INSERT INTO task_outbox (task_id, created_at) VALUES (?, ?)")
                    .bind(&id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|err| db_error("record a new task's outbox entry", err))?;
                if let Some(ask) = &new.pull_request {
                    pull_requests::insert_ask(&mut tx, &id, ask, now).await?;
                }
                (row, Created::New)
            }
            None => {
                let existing = sqlx::query(select_by_idempotency_key())
                    .bind(&new.owner)
                    .bind(&new.idempotency_key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|err| db_error("read the task with the same idempotency key", err))?;
                (existing, Created::Existing)
            }
        };
        tx.commit()
            .await
            .map_err(|err| db_error("commit a new task", err))?;
        Ok((task_from_row(&row)?, created))
    }

    async fn get(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query(select_by_id())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("read a task", err))?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn list(&self, filter: TaskFilter) -> Result<TaskPage, StoreError> {
        let limit = match filter.limit {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
        let mut query = QueryBuilder::<Sqlite>::new("SELECT ");
        query.push(TASK_COLUMNS).push(" FROM tasks WHERE 1 = 1");
        if let Some(owner) = filter.owner {
            query.push(" AND owner = ").push_bind(owner);
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(after) = after {
            query
                .push(" AND (created_at, id) < (")
                .push_bind(after.created_at)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        // One row more than asked tells whether another page follows.
        query
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|err| db_error("list tasks", err))?;
        let mut tasks = rows
            .iter()
            .map(task_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if tasks.len() > limit as usize {
            tasks.truncate(limit as usize);
            tasks.last().map(|last| Cursor::after(last).encode())
        } else {
            None
        };
        Ok(TaskPage { tasks, next_cursor })
    }

    async fn transition(
        &self,
        id: TaskId,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError> {
        if !from.can_move_to(to) {
            return Err(TransitionError::Illegal { from, to });
        }
        let now = now_ms();
        let result_json = result_json(&update)?;
        let row = sqlx::query(update_if_status())
            .bind(to.as_str())
            .bind(now)
            .bind(update.message)
            .bind(update.pr_url)
            .bind(result_json)
            .bind(update.runner_ref)
            .bind(update.deadline_in.map(|d| now.saturating_add(millis(d))))
            .bind(to.is_terminal())
            .bind(to.is_terminal())
            .bind(id.to_string())
            .bind(from.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("change a task's status", err))?;
        match row {
            Some(row) => Ok(task_from_row(&row)?),
            None => Err(self.explain(id, from).await),
        }
    }

    async fn claim(
        &self,
        id: TaskId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError> {
        self.claim_task(id, holder, ttl).await
    }

    async fn take_over(
        &self,
        id: TaskId,
        status: TaskStatus,
        attempt: u32,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError> {
        self.take_over_task(id, status, attempt, holder, ttl).await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, TransitionError> {
        self.renew_lease(lease, ttl).await
    }

    async fn advance(
        &self,
        lease: &Lease,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError> {
        self.advance_leased(lease, from, to, update).await
    }

    async fn release(&self, lease: &Lease, look_again_in: Duration) -> Result<(), TransitionError> {
        self.release_lease(lease, look_again_in).await
    }

    async fn due(&self, due: Due, limit: u32) -> Result<Vec<TaskId>, StoreError> {
        self.due_tasks(due, limit).await
    }

    async fn requeued(&self, id: TaskId) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE tasks SET updated_at = ? WHERE id = ? AND status = 'QUEUED'")
                .bind(now_ms())
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(|err| db_error("record a re-sent task", err))?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox_done(&self, id: TaskId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM task_outbox WHERE task_id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|err| db_error("remove an outbox entry", err))?;
        Ok(())
    }

    async fn add_token(&self, owner: &str, token_hash: &str) -> Result<(), StoreError> {
        self.insert_token(owner, token_hash).await
    }

    async fn owner_of_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        self.token_owner(token_hash).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.all_tokens().await
    }

    async fn revoke_token(&self, id: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.revoke(id).await
    }

    async fn live_tasks(&self, owner: &str) -> Result<u64, StoreError> {
        self.owner_live_tasks(owner).await
    }

    async fn count_live(&self) -> Result<Vec<(TaskStatus, u64)>, StoreError> {
        self.live_by_status().await
    }

    async fn pull_request(&self, id: TaskId) -> Result<Option<PullRequestRecord>, StoreError> {
        self.read_pull_request(id).await
    }

    async fn ask_pull_request(
        &self,
        id: TaskId,
        ask: PullRequestAsk,
        stale: Duration,
    ) -> Result<bool, StoreError> {
        self.upsert_ask(id, ask, stale).await
    }

    async fn start_pull_request(
        &self,
        id: TaskId,
        stale: Duration,
    ) -> Result<Option<PullRequestRecord>, StoreError> {
        self.begin_opening(id, stale).await
    }

    async fn finish_pull_request(
        &self,
        id: TaskId,
        outcome: &PrOutcome,
    ) -> Result<bool, StoreError> {
        self.end_opening(id, outcome).await
    }

    async fn mark_purged(&self, id: TaskId) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET purged_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|err| db_error("record a task's files as deleted", err))?;
        Ok(())
    }

    async fn follow_up(&self, id: TaskId, message: &str) -> Result<Task, TransitionError> {
        self.continue_task(id, message).await
    }

    async fn past_runs(&self, id: TaskId) -> Result<Vec<crate::task::RunRecord>, StoreError> {
        self.runs_before(id).await
    }

    async fn end_attempt(
        &self,
        lease: &Lease,
        from: TaskStatus,
        ended: &crate::store::EndedRun,
        next: crate::store::AttemptNext,
    ) -> Result<Task, TransitionError> {
        self.end_attempt_tx(lease, from, ended, next).await
    }
}

/// The update's result as stored JSON text.
fn result_json(update: &TaskUpdate) -> Result<Option<String>, StoreError> {
    update
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| StoreError::query("encode the task result", err))
}

fn insert_task() -> &'static str {
    concat!(
        "INSERT INTO tasks (id, owner, input_type, git_url, git_ref, zip_name, zip_key, ",
        "description, target_file, model, max_turns, max_tokens, timeout_secs, status, ",
        "idempotency_key, created_at, updated_at, best_of, check_command, setup) ",
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ",
        "ON CONFLICT (owner, idempotency_key) DO NOTHING RETURNING ",
        task_columns!()
    )
}

fn select_by_id() -> &'static str {
    concat!("SELECT ", task_columns!(), " FROM tasks WHERE id = ?")
}

fn select_by_idempotency_key() -> &'static str {
    concat!(
        "SELECT ",
        task_columns!(),
        " FROM tasks WHERE owner = ? AND idempotency_key = ?"
    )
}

/// The compare-and-set: only a row still in the expected status changes. Fields left
/// `None` in the update keep their value; a terminal status ends the lease.
fn update_if_status() -> &'static str {
    concat!(
        "UPDATE tasks SET status = ?, updated_at = ?, ",
        "message = COALESCE(?, message), pr_url = COALESCE(?, pr_url), ",
        "result_json = COALESCE(?, result_json), runner_ref = COALESCE(?, runner_ref), ",
        "deadline_at = COALESCE(?, deadline_at), ",
        "lease_holder = CASE WHEN ? THEN NULL ELSE lease_holder END, ",
        "lease_expires_at = CASE WHEN ? THEN NULL ELSE lease_expires_at END ",
        "WHERE id = ? AND status = ? RETURNING ",
        task_columns!()
    )
}

/// SQLite's busy (5) and locked (6), with their extended codes (the low byte): another
/// writer held the lock past the busy timeout.
fn sqlite_busy(code: &str) -> bool {
    code.parse::<i64>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

fn db_error(doing: &str, err: sqlx::Error) -> StoreError {
    sql_error(doing, err, sqlite_busy)
}
