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
mod connect;
mod lease;
mod pull_requests;
mod runs;
mod tasks;
mod tokens;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::MySql;
use sqlx::mysql::{MySqlDatabaseError, MySqlPool, MySqlPoolOptions};

use super::sqlite::rows::task_from_row;
use crate::pr::{PrOutcome, PullRequestAsk, PullRequestRecord};
use crate::store::{
    Created, Due, Lease, StoreError, TaskFilter, TaskPage, TaskStore, TokenInfo, TransitionError,
    sql_error,
};
use crate::task::{NewTask, Task, TaskId, TaskStatus, TaskUpdate};

pub use self::connect::MySqlConfig;
use self::connect::migrate;
use self::tasks::{result_json, select_by_id};

/// The database server's clock in ms since the epoch; constant within one statement.
macro_rules! now_ms {
    () => {
        "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"
    };
}
use now_ms;

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
        self.create_task(new).await
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
        self.list_tasks(filter).await
    }

    async fn transition(
        &self,
        id: TaskId,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError> {
        self.transition_task(id, from, to, update).await
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
