//! Follow-ups on SQLite: the current run archived and the next one queued, in one
//! `IMMEDIATE` transaction (see [`TaskStore::follow_up`](crate::store::TaskStore)).

use super::{SqliteTaskStore, db_error};
use crate::store::sqlite::rows::task_from_row;
use crate::store::{RUN_COLUMNS, StoreError, TransitionError, check_follow_up, run_from_row};
use crate::task::{RunRecord, Task, TaskId, now_ms};

impl SqliteTaskStore {
    pub(super) async fn continue_task(
        &self,
        id: TaskId,
        message: &str,
    ) -> Result<Task, TransitionError> {
        let now = now_ms();
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|err| db_error("start a follow-up", err))?;
        let row = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            ", purged_at FROM tasks WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|err| db_error("read a task to continue", err))?;
        let Some(row) = row else {
            return Err(TransitionError::NotFound(id));
        };
        let task = task_from_row(&row)?;
        let purged: Option<i64> = sqlx::Row::try_get(&row, "purged_at")
            .map_err(|err| db_error("read a task's retention", err))?;
        let result_json = check_follow_up(&task, purged)?;
        sqlx::query(
            "INSERT INTO task_runs (task_id, run_number, instruction, status, message, \
             result_json, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(i64::from(task.run_number))
        .bind(task.instruction())
        .bind(task.status.as_str())
        .bind(&task.message)
        .bind(result_json)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|err| db_error("archive a finished run", err))?;
        let row = sqlx::query(concat!(
            "UPDATE tasks SET status = 'QUEUED', run_number = run_number + 1, follow_up = ?, ",
            "message = NULL, result_json = NULL, runner_ref = NULL, deadline_at = NULL, ",
            "lease_holder = NULL, lease_expires_at = NULL, updated_at = ? ",
            "WHERE id = ? AND status = ? RETURNING ",
            task_columns!()
        ))
        .bind(message)
        .bind(now)
        .bind(id.to_string())
        .bind(task.status.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(|err| db_error("queue a follow-up run", err))?;
        sqlx::query("INSERT OR REPLACE INTO task_outbox (task_id, created_at) VALUES (?, ?)")
            .bind(id.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|err| db_error("record a follow-up's outbox entry", err))?;
        tx.commit()
            .await
            .map_err(|err| db_error("commit a follow-up", err))?;
        Ok(task_from_row(&row)?)
    }

    pub(super) async fn runs_before(&self, id: TaskId) -> Result<Vec<RunRecord>, StoreError> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM task_runs WHERE task_id = ? ORDER BY run_number");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|err| db_error("list a task's runs", err))?;
        rows.iter().map(run_from_row).collect()
    }
}
