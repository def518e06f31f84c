//! Pull requests asked for with tasks, on SQLite (`task_pull_requests`).

use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteTaskStore, db_error};
use crate::pr::{PrOutcome, PrState, PullRequestAsk, PullRequestRecord, SealedToken};
use crate::store::{StoreError, millis};
use crate::task::{TaskId, now_ms};

/// The columns a record is read from; macros so the SQL stays `&'static str`.
macro_rules! columns {
    () => {
        "task_id, base, title, sealed_token, state, error, tries, updated_at"
    };
}

pub(super) async fn insert_ask(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    ask: &PullRequestAsk,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO task_pull_requests (task_id, base, title, sealed_token, state, updated_at) \
         VALUES (?, ?, ?, ?, 'REQUESTED', ?)",
    )
    .bind(id)
    .bind(&ask.base)
    .bind(&ask.title)
    .bind(ask.sealed_token.as_ref().map(|t| t.0.as_str()))
    .bind(now)
    .execute(conn)
    .await
    .map_err(|err| db_error("record a task's pull request", err))?;
    Ok(())
}

fn record(row: &SqliteRow) -> Result<PullRequestRecord, StoreError> {
    let id: String = row.try_get("task_id").map_err(corrupt("?"))?;
    let corrupt = |reason: String| StoreError::Corrupt {
        id: id.clone(),
        reason,
    };
    let task_id = id.parse::<TaskId>().map_err(|e| corrupt(e.to_string()))?;
    let state: String = row.try_get("state").map_err(|e| corrupt(e.to_string()))?;
    let tries: i64 = row.try_get("tries").map_err(|e| corrupt(e.to_string()))?;
    let sealed: Option<String> = row
        .try_get("sealed_token")
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(PullRequestRecord {
        task_id,
        ask: PullRequestAsk {
            base: row.try_get("base").map_err(|e| corrupt(e.to_string()))?,
            title: row.try_get("title").map_err(|e| corrupt(e.to_string()))?,
            sealed_token: sealed.map(SealedToken),
        },
        state: state.parse::<PrState>().map_err(corrupt)?,
        error: row.try_get("error").map_err(|e| corrupt(e.to_string()))?,
        tries: u32::try_from(tries).unwrap_or_default(),
        updated_at: row
            .try_get("updated_at")
            .map_err(|e| corrupt(e.to_string()))?,
    })
}

fn corrupt(id: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |err| StoreError::Corrupt {
        id: id.to_string(),
        reason: err.to_string(),
    }
}

impl SqliteTaskStore {
    pub(super) async fn read_pull_request(
        &self,
        id: TaskId,
    ) -> Result<Option<PullRequestRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM task_pull_requests WHERE task_id = ?"
        );
        let row = sqlx::query(sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("read a task's pull request", err))?;
        row.as_ref().map(record).transpose()
    }

    pub(super) async fn upsert_ask(
        &self,
        id: TaskId,
        ask: PullRequestAsk,
        stale: Duration,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        // Replaces an ask nobody is opening and that is not open (or whose opener is gone).
        let sql = "INSERT INTO task_pull_requests (task_id, base, title, sealed_token, state, updated_at) \
             VALUES (?, ?, ?, ?, 'REQUESTED', ?) \
             ON CONFLICT (task_id) DO UPDATE SET \
             base = COALESCE(excluded.base, base), title = COALESCE(excluded.title, title), \
             sealed_token = COALESCE(excluded.sealed_token, sealed_token), \
             state = 'REQUESTED', error = NULL, updated_at = excluded.updated_at \
             WHERE state IN ('REQUESTED', 'FAILED', 'SKIPPED') \
             OR (state = 'OPENING' AND updated_at < ?)";
        let done = sqlx::query(sql)
            .bind(id.to_string())
            .bind(&ask.base)
            .bind(&ask.title)
            .bind(ask.sealed_token.as_ref().map(|t| t.0.as_str()))
            .bind(now)
            .bind(now.saturating_sub(millis(stale)))
            .execute(&self.pool)
            .await
            .map_err(|err| db_error("ask for a task's pull request", err))?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn begin_opening(
        &self,
        id: TaskId,
        stale: Duration,
    ) -> Result<Option<PullRequestRecord>, StoreError> {
        let now = now_ms();
        let sql = concat!(
            "UPDATE task_pull_requests SET state = 'OPENING', tries = tries + 1, updated_at = ? ",
            "WHERE task_id = ? AND (state = 'REQUESTED' OR (state = 'OPENING' AND updated_at < ?)) ",
            "RETURNING ",
            columns!()
        );
        let row = sqlx::query(sql)
            .bind(now)
            .bind(id.to_string())
            .bind(now.saturating_sub(millis(stale)))
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("start opening a pull request", err))?;
        row.as_ref().map(record).transpose()
    }

    pub(super) async fn end_opening(
        &self,
        id: TaskId,
        outcome: &PrOutcome,
    ) -> Result<bool, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|err| db_error("start recording a pull request", err))?;
        let done = sqlx::query(
            "UPDATE task_pull_requests SET state = ?, error = ?, updated_at = ?, \
             sealed_token = CASE WHEN ? THEN sealed_token ELSE NULL END \
             WHERE task_id = ? AND state = 'OPENING'",
        )
        .bind(outcome.state().as_str())
        .bind(outcome.note())
        .bind(now_ms())
        .bind(outcome.keeps_token())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|err| db_error("record a pull request", err))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let PrOutcome::Opened { url } = outcome {
            sqlx::query("UPDATE tasks SET pr_url = ? WHERE id = ?")
                .bind(url)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|err| db_error("record a task's pull request URL", err))?;
        }
        tx.commit()
            .await
            .map_err(|err| db_error("commit a pull request", err))?;
        Ok(true)
    }
}
