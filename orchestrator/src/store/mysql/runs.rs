//! Follow-ups on MySQL: the row locked (`FOR UPDATE`), the current run archived and the
//! next one queued, in one transaction (see
//! [`TaskStore::follow_up`](crate::store::TaskStore)).

use super::{MySqlTaskStore, db_error, now_ms, select_by_id};
use crate::store::sqlite::rows::task_from_row;
use crate::store::{RUN_COLUMNS, StoreError, TransitionError, check_follow_up, run_from_row};
use crate::task::{RunRecord, Task, TaskId};

impl MySqlTaskStore {
    pub(super) async fn continue_task(
        &self,
        id: TaskId,
        message: &str,
    ) -> Result<Task, TransitionError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|err| db_error("start a follow-up", err))?;
        let row = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            ", purged_at FROM tasks WHERE id = ? FOR UPDATE"
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
        sqlx::query(concat!(
            "INSERT INTO task_runs (task_id, run_number, instruction, status, message, ",
            "result_json, finished_at) VALUES (?, ?, ?, ?, ?, ?, ",
            now_ms!(),
            ")"
        ))
        .bind(id.to_string())
        .bind(i64::from(task.run_number))
        .bind(task.instruction())
        .bind(task.status.as_str())
        .bind(&task.message)
        .bind(result_json)
        .execute(&mut *tx)
        .await
        .map_err(|err| db_error("archive a finished run", err))?;
        sqlx::query(concat!(
            "UPDATE tasks SET status = 'QUEUED', run_number = run_number + 1, follow_up = ?, ",
            "message = NULL, result_json = NULL, runner_ref = NULL, deadline_at = NULL, ",
            "lease_holder = NULL, lease_expires_at = NULL, updated_at = ",
            now_ms!(),
            " WHERE id = ?"
        ))
        .bind(message)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|err| db_error("queue a follow-up run", err))?;
        sqlx::query(concat!(
            "INSERT INTO task_outbox (task_id, created_at) VALUES (?, ",
            now_ms!(),
            ") ON DUPLICATE KEY UPDATE created_at = VALUES(created_at)"
        ))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|err| db_error("record a follow-up's outbox entry", err))?;
        let row = sqlx::query(select_by_id())
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| db_error("read a continued task", err))?;
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
