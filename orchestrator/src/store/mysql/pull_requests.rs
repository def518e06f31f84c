//! Pull requests asked for with tasks, on MySQL (`task_pull_requests`). The same
//! contract as SQLite's; times are the server's clock.

use std::time::Duration;

use super::{MySqlTaskStore, db_error, now_ms};
use crate::pr::{PrOutcome, PrState, PullRequestAsk, PullRequestRecord, SealedToken};
use crate::store::{StoreError, millis};
use crate::task::TaskId;

/// The columns a record is read from; a macro so the SQL stays `&'static str`.
macro_rules! columns {
    () => {
        "task_id, base, title, sealed_token, state, error, tries, updated_at"
    };
}

type PrRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i32,
    i64,
);

fn record(row: PrRow) -> Result<PullRequestRecord, StoreError> {
    let (id, base, title, sealed, state, error, tries, updated_at) = row;
    let corrupt = |reason: String| StoreError::Corrupt {
        id: id.clone(),
        reason,
    };
    Ok(PullRequestRecord {
        task_id: id.parse::<TaskId>().map_err(|e| corrupt(e.to_string()))?,
        ask: PullRequestAsk {
            base,
            title,
            sealed_token: sealed.map(SealedToken),
        },
        state: state.parse::<PrState>().map_err(corrupt)?,
        error,
        tries: u32::try_from(tries).unwrap_or_default(),
        updated_at,
    })
}

pub(super) async fn insert_ask(
    conn: &mut sqlx::MySqlConnection,
    id: &str,
    ask: &PullRequestAsk,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO task_pull_requests (task_id, base, title, sealed_token, state, updated_at) ",
        "VALUES (?, ?, ?, ?, 'REQUESTED', ",
        now_ms!(),
        ")"
    ))
    .bind(id)
    .bind(&ask.base)
    .bind(&ask.title)
    .bind(ask.sealed_token.as_ref().map(|t| t.0.as_str()))
    .execute(conn)
    .await
    .map_err(|err| db_error("record a task's pull request", err))?;
    Ok(())
}

impl MySqlTaskStore {
    pub(super) async fn read_pull_request(
        &self,
        id: TaskId,
    ) -> Result<Option<PullRequestRecord>, StoreError> {
        let row: Option<PrRow> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM task_pull_requests WHERE task_id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|err| db_error("read a task's pull request", err))?;
        row.map(record).transpose()
    }

    pub(super) async fn upsert_ask(
        &self,
        id: TaskId,
        ask: PullRequestAsk,
        stale: Duration,
    ) -> Result<bool, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|err| db_error("start asking for a pull request", err))?;
        let current: Option<(String, i64, i64)> = sqlx::query_as(concat!(
            "SELECT state, updated_at, ",
            now_ms!(),
            " FROM task_pull_requests WHERE task_id = ? FOR UPDATE"
        ))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|err| db_error("read a task's pull request", err))?;
        match current {
            None => {
                let inserted = insert_ask(&mut tx, &id.to_string(), &ask).await;
                if let Err(err) = inserted {
                    // Another ask for the same task won the insert.
                    tracing::debug!(task_id = %id, error = %err, "pull request ask not recorded");
                    return Ok(false);
                }
            }
            Some((state, updated_at, now)) => {
                let replaceable = matches!(state.as_str(), "REQUESTED" | "FAILED" | "SKIPPED")
                    || (state == "OPENING" && updated_at < now.saturating_sub(millis(stale)));
                if !replaceable {
                    return Ok(false);
                }
                sqlx::query(concat!(
                    "UPDATE task_pull_requests SET base = COALESCE(?, base), ",
                    "title = COALESCE(?, title), sealed_token = COALESCE(?, sealed_token), ",
                    "state = 'REQUESTED', error = NULL, updated_at = ",
                    now_ms!(),
                    " WHERE task_id = ?"
                ))
                .bind(&ask.base)
                .bind(&ask.title)
                .bind(ask.sealed_token.as_ref().map(|t| t.0.as_str()))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|err| db_error("ask for a task's pull request", err))?;
            }
        }
        tx.commit()
            .await
            .map_err(|err| db_error("commit a pull request ask", err))?;
        Ok(true)
    }

    pub(super) async fn begin_opening(
        &self,
        id: TaskId,
        stale: Duration,
    ) -> Result<Option<PullRequestRecord>, StoreError> {
        let done = sqlx::query(concat!(
            "UPDATE task_pull_requests SET state = 'OPENING', tries = tries + 1, updated_at = ",
            now_ms!(),
            " WHERE task_id = ? AND (state = 'REQUESTED' OR (state = 'OPENING' AND updated_at < ",
            now_ms!(),
            " - ?))"
        ))
        .bind(id.to_string())
        .bind(millis(stale))
        .execute(&self.pool)
        .await
        .map_err(|err| db_error("start opening a pull request", err))?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.read_pull_request(id).await
    }

    pub(super) async fn end_opening(
        &self,
        id: TaskId,
        outcome: &PrOutcome,
    ) -> Result<bool, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|err| db_error("start recording a pull request", err))?;
        let done = sqlx::query(concat!(
            "UPDATE task_pull_requests SET state = ?, error = ?, updated_at = ",
            now_ms!(),
            ", sealed_token = CASE WHEN ? THEN sealed_token ELSE NULL END ",
            "WHERE task_id = ? AND state = 'OPENING'"
        ))
        .bind(outcome.state().as_str())
        .bind(outcome.note())
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
