//! The embedded task store: one SQLite file beside the server.
//!
//! SQLite in WAL mode lets readers (status polls, listings) run beside the one writer;
//! writes serialize on the database lock, waiting up to the busy timeout rather than
//! failing. Status changes are a single conditional `UPDATE ... WHERE status = ?`, so the
//! compare-and-set is the database's, not ours. The schema lives in
//! `migrations/sqlite/`, embedded in the binary and applied on open.

/// The columns a [`Task`] is read from; a macro so the SQL built with it stays
/// `&'static str`, which sqlx takes without an `AssertSqlSafe`.
macro_rules! task_columns {
    () => {
        "id, owner, input_type, git_url, git_ref, zip_name, zip_key, description, \
         target_file, model, max_turns, max_tokens, timeout_secs, status, message, pr_url, \
         attempt, result_json, runner_ref, idempotency_key, created_at, updated_at, deadline_at"
    };
}

mod rows;

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
use crate::store::{
    Created, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, StoreError, TaskFilter, TaskPage, TaskStore,
    TransitionError,
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
                StoreError::Unavailable(format!(
                    "cannot create the folder {} for the task database: {err}",
                    parent.display()
                ))
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
                StoreError::Unavailable(format!(
                    "cannot open the task database {}: {err}",
                    path.display()
                ))
            })?;
        Self::migrated(pool).await
    }

    /// A private database that lives as long as this store (and its clones): for tests.
    ///
    /// It runs on one connection, because each SQLite in-memory connection would otherwise
    /// see its own empty database; operations therefore run one at a time.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|err| StoreError::Unavailable(format!("in-memory database: {err}")))?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|err| StoreError::Unavailable(format!("in-memory database: {err}")))?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await.map_err(|err| {
            StoreError::Unavailable(format!("cannot migrate the task database: {err}"))
        })?;
        Ok(Self { pool })
    }

    /// Waits for in-flight queries and closes every connection (the WAL is checkpointed).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn current_status(&self, id: TaskId) -> Result<Option<TaskStatus>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT status FROM tasks WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("read a task's status", err))?;
        row.map(|(status,)| {
            status.parse().map_err(|err| StoreError::Corrupt {
                id: id.to_string(),
                reason: format!("{err}"),
            })
        })
        .transpose()
    }
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
            .bind(TaskStatus::Pending.as_str())
            .bind(&new.idempotency_key)
            .bind(now)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|err| db_error("create a task", err))?;
        let (row, created) = match inserted {
            Some(row) => (row, Created::New),
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
        let result_json = update
            .result
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|err| StoreError::Query(format!("cannot encode the task result: {err}")))?;
        let row = sqlx::query(update_if_status())
            .bind(to.as_str())
            .bind(now_ms())
            .bind(update.message)
            .bind(update.pr_url)
            .bind(result_json)
            .bind(update.runner_ref)
            .bind(update.deadline_at)
            .bind(i64::from(update.bump_attempt))
            .bind(id.to_string())
            .bind(from.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("change a task's status", err))?;
        if let Some(row) = row {
            return Ok(task_from_row(&row)?);
        }
        match self.current_status(id).await? {
            None => Err(TransitionError::NotFound(id)),
            Some(actual) => Err(TransitionError::Conflict {
                id,
                expected: from,
                actual,
            }),
        }
    }

    async fn stale(
        &self,
        statuses: &[TaskStatus],
        updated_before: i64,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        if statuses.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new("SELECT ");
        query
            .push(TASK_COLUMNS)
            .push(" FROM tasks WHERE status IN (");
        let mut list = query.separated(", ");
        for status in statuses {
            list.push_bind(status.as_str());
        }
        query
            .push(") AND updated_at < ")
            .push_bind(updated_before)
            .push(" ORDER BY updated_at, id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|err| db_error("find stale tasks", err))?;
        rows.iter().map(task_from_row).collect()
    }

    async fn past_deadline(&self, now: i64, limit: u32) -> Result<Vec<Task>, StoreError> {
        let rows = sqlx::query(select_past_deadline())
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|err| db_error("find tasks past their deadline", err))?;
        rows.iter().map(task_from_row).collect()
    }

    async fn add_token(&self, owner: &str, token_hash: &str) -> Result<(), StoreError> {
        // Registering the same token again (a dev token at every start) is a no-op; the
        // owner check below refuses handing one token to a second owner.
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, owner, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(token_hash)
        .bind(owner)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|err| db_error("record an API token", err))?;
        match self.owner_of_token(token_hash).await? {
            Some(existing) if existing == owner => Ok(()),
            _ => Err(StoreError::Query(format!(
                "this API token is already registered to another owner than `{owner}`; \
                 create a new token instead"
            ))),
        }
    }

    async fn owner_of_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT owner FROM api_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|err| db_error("look up an API token", err))?;
        Ok(row.map(|(owner,)| owner))
    }
}

fn insert_task() -> &'static str {
    concat!(
        "INSERT INTO tasks (id, owner, input_type, git_url, git_ref, zip_name, zip_key, ",
        "description, target_file, model, max_turns, max_tokens, timeout_secs, status, ",
        "idempotency_key, created_at, updated_at) ",
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ",
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
/// `None` in the update keep their value.
fn update_if_status() -> &'static str {
    concat!(
        "UPDATE tasks SET status = ?, updated_at = ?, ",
        "message = COALESCE(?, message), pr_url = COALESCE(?, pr_url), ",
        "result_json = COALESCE(?, result_json), runner_ref = COALESCE(?, runner_ref), ",
        "deadline_at = COALESCE(?, deadline_at), attempt = attempt + ? ",
        "WHERE id = ? AND status = ? RETURNING ",
        task_columns!()
    )
}

fn select_past_deadline() -> &'static str {
    concat!(
        "SELECT ",
        task_columns!(),
        " FROM tasks WHERE deadline_at IS NOT NULL AND deadline_at < ? ",
        "AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') ",
        "ORDER BY deadline_at, id LIMIT ?"
    )
}

/// Sorts a database failure into "try again later" and "this query is wrong", naming
/// what was being done.
fn db_error(doing: &str, err: sqlx::Error) -> StoreError {
    let busy = match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLITE_BUSY and SQLITE_LOCKED: another writer held the lock past the timeout.
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("5" | "6")),
        _ => false,
    };
    if busy {
        StoreError::Unavailable(format!("cannot {doing}: {err}"))
    } else {
        StoreError::Query(format!("cannot {doing}: {err}"))
    }
}
