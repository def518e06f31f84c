//! The cluster task store: MySQL (or MariaDB), shared by every API and worker process.
//!
//! MySQL has no `UPDATE ... RETURNING`, so each compare-and-set is a short transaction:
//! one conditional `UPDATE` (the expected status, and for fenced writes the holder and
//! attempt, in its `WHERE`), its affected-row count checked (the connection reports
//! matched rows), then the row read back under the lock the `UPDATE` took. When no row
//! matched, the row is read to say why. Creation is idempotent by the unique key
//! `(owner, idempotency_key)`: a second create with the key waits on the first's lock and
//! then finds the row. Every time, lease expiries included, is the database server's
//! clock (`NOW(3)`), so processes with skewed clocks agree. Deadlocks, lock-wait
//! timeouts and lost connections are transient ([`StoreError::is_transient`]). The
//! schema lives in `migrations/mysql/`, embedded in the binary and applied on connect
//! (sqlx takes a database lock, so replicas starting together migrate once).

mod best_of;
mod lease;
mod pull_requests;
mod runs;
mod tokens;

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::migrate::Migrator;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::{MySql, QueryBuilder};

use super::sqlite::rows::{Cursor, NewTaskRow, TASK_COLUMNS, task_from_row};
use crate::pr::{PrOutcome, PullRequestAsk, PullRequestRecord};
use crate::store::{
    Created, DEFAULT_PAGE_SIZE, Due, Lease, MAX_PAGE_SIZE, StoreError, TaskFilter, TaskPage,
    TaskStore, TokenInfo, TransitionError, millis, sql_error,
};
use crate::task::{NewTask, Task, TaskId, TaskStatus, TaskUpdate};

/// The schema, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/mysql");

/// The database server's clock in ms since the epoch; constant within one statement.
macro_rules! now_ms {
    () => {
        "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"
    };
}
use now_ms;

/// Where the MySQL store is and how many connections it may hold. The password comes
/// from the environment or a file, never from the config file.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MySqlConfig {
    /// `mysql://USER@HOST:PORT/DATABASE` (a password written here is refused: use
    /// `password_env` or `password_file`).
    pub url: String,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// A file holding the password (trailing newline ignored), e.g. a mounted Secret.
    pub password_file: Option<std::path::PathBuf>,
    /// Connections per process.
    pub max_connections: u32,
    /// How long a query waits for a free connection (or a new one) before it fails as
    /// transient.
    pub acquire_timeout_ms: u64,
    /// How long a statement waits for a row lock before failing as transient (MySQL's
    /// own default is 50 s; a worker would rather retry sooner).
    pub lock_wait_timeout_secs: u32,
    /// Set by code (tests, the environment override): a full URL that may carry the
    /// password. Never read from the file.
    #[serde(skip)]
    pub resolved_url: Option<SecretString>,
}

impl Default for MySqlConfig {
    fn default() -> Self {
        Self {
            url: "mysql://agent@127.0.0.1:3306/agent".into(),
            password_env: Some("AGENT_MYSQL_PASSWORD".into()),
            password_file: None,
            max_connections: 10,
            acquire_timeout_ms: 5_000,
            lock_wait_timeout_secs: 10,
            resolved_url: None,
        }
    }
}

impl std::fmt::Debug for MySqlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlConfig")
            .field("url", &self.url)
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl MySqlConfig {
    /// A config for a full URL (password included), for tests and the environment
    /// override.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            resolved_url: Some(SecretString::from(url.into())),
            ..Self::default()
        }
    }

    /// The connect options: the URL, plus the password from the environment or file.
    fn connect_options(&self) -> Result<MySqlConnectOptions, StoreError> {
        if let Some(url) = &self.resolved_url {
            return url
                .expose_secret()
                .parse::<MySqlConnectOptions>()
                .map_err(|err| StoreError::query("read the MySQL URL", redact(err)));
        }
        let parsed = url::Url::parse(&self.url)
            .map_err(|err| StoreError::query("read the MySQL URL in [store.mysql] url", err))?;
        if parsed.password().is_some() {
            return Err(StoreError::Refused(
                "[store.mysql] url carries a password; put it in the environment variable \
                 named by password_env, or in password_file"
                    .into(),
            ));
        }
        let mut options = self
            .url
            .parse::<MySqlConnectOptions>()
            .map_err(|err| StoreError::query("read the MySQL URL in [store.mysql] url", err))?;
        if let Some(password) = self.password()? {
            options = options.password(password.expose_secret());
        }
        Ok(options)
    }

    fn password(&self) -> Result<Option<SecretString>, StoreError> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|err| {
                StoreError::query(
                    format!("read the MySQL password file {}", path.display()),
                    err,
                )
            })?;
            return Ok(Some(SecretString::from(
                text.trim_end_matches(['\r', '\n']),
            )));
        }
        Ok(self
            .password_env
            .as_deref()
            .and_then(|name| std::env::var(name).ok())
            .filter(|value| !value.is_empty())
            .map(SecretString::from))
    }
}

/// Brings the schema up to date, one process at a time: replicas starting together
/// queue on a named lock of the server (sqlx's own lock does not stop two runners from
/// applying the first migration together), and each applies only what is missing.
async fn migrate(pool: &MySqlPool) -> Result<(), StoreError> {
    const DOING: &str = "migrate the MySQL task store";
    let mut conn = pool.acquire().await.map_err(|err| db_error(DOING, err))?;
    let (locked,): (Option<i64>,) =
        sqlx::query_as("SELECT GET_LOCK(CONCAT('agent-migrate:', DATABASE()), 60)")
            .fetch_one(&mut *conn)
            .await
            .map_err(|err| db_error(DOING, err))?;
    if locked != Some(1) {
        return Err(StoreError::unavailable(
            DOING,
            std::io::Error::other("another process held the migration lock for 60 s"),
        ));
    }
    let migrated = MIGRATOR.run(&mut *conn).await;
    let released = sqlx::query("SELECT RELEASE_LOCK(CONCAT('agent-migrate:', DATABASE()))")
        .execute(&mut *conn)
        .await;
    migrated.map_err(|err| StoreError::query(DOING, err))?;
    released.map_err(|err| db_error(DOING, err))?;
    Ok(())
}

/// A URL parse error may quote the URL, password included: keep only its kind.
fn redact(err: sqlx::Error) -> std::io::Error {
    let kind = match err {
        sqlx::Error::Configuration(_) => "not a valid mysql:// URL",
        _ => "unusable URL",
    };
    std::io::Error::other(kind)
}

/// A [`TaskStore`] on MySQL or MariaDB. Clones share one pool.
#[derive(Debug, Clone)]
pub struct MySqlTaskStore {
    pool: MySqlPool,
}

impl MySqlTaskStore {
    /// Connects and brings the schema up to date.
    pub async fn connect(config: &MySqlConfig) -> Result<Self, StoreError> {
        let options = config.connect_options()?;
        let lock_wait = config.lock_wait_timeout_secs.max(1);
        let pool = MySqlPoolOptions::new()
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SET SESSION innodb_lock_wait_timeout = {lock_wait}"
                    )))
                    .execute(conn)
                    .await
                    .map(|_| ())
                })
            })
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms.max(1)))
            .connect_with(options)
            .await
            .map_err(|err| db_error("connect to the MySQL task store", err))?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// Waits for in-flight queries and closes every connection.
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

    /// Runs one conditional `UPDATE` in a transaction; if it matched the row, reads the
    /// row back under the lock and commits. `None` when nothing matched.
    async fn update_then_read<'q>(
        &self,
        doing: &str,
        update: sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>,
        id: TaskId,
    ) -> Result<Option<Task>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|err| db_error(doing, err))?;
        let done = update
            .execute(&mut *tx)
            .await
            .map_err(|err| db_error(doing, err))?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(|err| db_error(doing, err))?;
            return Ok(None);
        }
        let row = sqlx::query(select_by_id())
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| db_error(doing, err))?;
        tx.commit().await.map_err(|err| db_error(doing, err))?;
        Ok(Some(task_from_row(&row)?))
    }
}

/// A row's status and lease, read back after a compare-and-set missed.
struct Current {
    status: TaskStatus,
    holder: Option<String>,
    attempt: i64,
}

#[async_trait]
impl TaskStore for MySqlTaskStore {
    async fn create(&self, new: NewTask) -> Result<(Task, Created), StoreError> {
        let columns = NewTaskRow::new(&new)?;
        let id = TaskId::new().to_string();
        let mut tx = self
            .pool
            .begin()
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
            .bind(i64::from(new.best_of.attempts.max(1)))
            .bind(&new.best_of.check)
            .bind(&new.setup)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                // Another create with this key committed first (we waited on its lock).
                tx.rollback()
                    .await
                    .map_err(|err| db_error("create a task", err))?;
                let existing = sqlx::query(select_by_idempotency_key())
                    .bind(&new.owner)
                    .bind(&new.idempotency_key)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|err| db_error("read the task with the same idempotency key", err))?;
                return Ok((task_from_row(&existing)?, Created::Existing));
            }
            Err(err) => return Err(db_error("create a task", err)),
        }
        sqlx::query(concat!(
            "INSERT INTO task_outbox (task_id, created_at) VALUES (?, ",
            now_ms!(),
            ")"
        ))
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(|err| db_error("record a new task's outbox entry", err))?;
        if let Some(ask) = &new.pull_request {
            pull_requests::insert_ask(&mut tx, &id, ask).await?;
        }
        let row = sqlx::query(select_by_id())
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| db_error("read a new task", err))?;
        tx.commit()
            .await
            .map_err(|err| db_error("commit a new task", err))?;
        Ok((task_from_row(&row)?, Created::New))
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
        let mut query = QueryBuilder::<MySql>::new("SELECT ");
        query.push(TASK_COLUMNS).push(" FROM tasks WHERE 1 = 1");
        if let Some(owner) = filter.owner {
            query.push(" AND owner = ").push_bind(owner);
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(after) = after {
            // Spelled out rather than a row comparison, so the index on
            // (owner, created_at, id) serves it.
            query
                .push(" AND (created_at < ")
                .push_bind(after.created_at)
                .push(" OR (created_at = ")
                .push_bind(after.created_at)
                .push(" AND id < ")
                .push_bind(after.id)
                .push("))");
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
        let terminal = to.is_terminal();
        let query = sqlx::query(update_if_status())
            .bind(to.as_str())
            .bind(update.message)
            .bind(update.pr_url)
            .bind(result_json(update.result.as_ref())?)
            .bind(update.runner_ref)
            .bind(update.deadline_in.map(millis))
            .bind(terminal)
            .bind(terminal)
            .bind(id.to_string())
            .bind(from.as_str());
        match self
            .update_then_read("change a task's status", query, id)
            .await?
        {
            Some(task) => Ok(task),
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
        let done = sqlx::query(concat!(
            "UPDATE tasks SET updated_at = ",
            now_ms!(),
            " WHERE id = ? AND status = 'QUEUED'"
        ))
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
        sqlx::query(concat!(
            "UPDATE tasks SET purged_at = ",
            now_ms!(),
            " WHERE id = ?"
        ))
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
fn result_json(result: Option<&serde_json::Value>) -> Result<Option<String>, StoreError> {
    result
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| StoreError::query("encode the task result", err))
}

fn insert_task() -> &'static str {
    concat!(
        "INSERT INTO tasks (id, owner, input_type, git_url, git_ref, zip_name, zip_key, ",
        "description, target_file, model, max_turns, max_tokens, timeout_secs, status, ",
        "idempotency_key, best_of, check_command, setup, created_at, updated_at) ",
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ",
        now_ms!(),
        ", ",
        now_ms!(),
        ")"
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
/// `None` in the update keep their value; a terminal status ends the lease. The deadline
/// is bound as a duration and added to the server's clock.
fn update_if_status() -> &'static str {
    concat!(
        "UPDATE tasks SET status = ?, updated_at = ",
        now_ms!(),
        ", message = COALESCE(?, message), pr_url = COALESCE(?, pr_url), ",
        "result_json = COALESCE(?, result_json), runner_ref = COALESCE(?, runner_ref), ",
        "deadline_at = COALESCE(",
        now_ms!(),
        " + ?, deadline_at), ",
        "lease_holder = CASE WHEN ? THEN NULL ELSE lease_holder END, ",
        "lease_expires_at = CASE WHEN ? THEN NULL ELSE lease_expires_at END ",
        "WHERE id = ? AND status = ?"
    )
}

/// MySQL's transient failures, by error number: lock wait timeout (1205), deadlock
/// (1213), too many connections (1040), server shutting down (1053), connection killed
/// (1927), read-only during a failover (1290, 1836), and the client-side "server gone"
/// (2006, 2013).
fn mysql_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.try_downcast_ref::<MySqlDatabaseError>()
                .is_some_and(|db| {
                    matches!(
                        db.number(),
                        1205 | 1213 | 1040 | 1053 | 1927 | 1290 | 1836 | 2006 | 2013
                    )
                })
        }
        _ => false,
    }
}

fn db_error(doing: &str, err: sqlx::Error) -> StoreError {
    if mysql_transient(&err) {
        return StoreError::unavailable(doing, err);
    }
    // The generic sort: lost connections, pool timeouts; SQLSTATE 40001 (serialization
    // failure, the deadlock's class) as a last resort.
    sql_error(doing, err, |code| code == "40001")
}
