//! Best-of-N on SQLite: an ended attempt recorded and the next one queued (or the
//! chosen one named), in one `IMMEDIATE` transaction (see
//! [`TaskStore::end_attempt`](crate::store::TaskStore::end_attempt)).

use super::{SqliteTaskStore, db_error};
use crate::store::sqlite::rows::task_from_row;
use crate::store::{AttemptNext, EndedRun, Lease, TransitionError, check_attempt_end};
use crate::task::{Task, TaskStatus, now_ms};

impl SqliteTaskStore {
    pub(super) async fn end_attempt_tx(
        &self,
        lease: &Lease,
        from: TaskStatus,
        ended: &EndedRun,
        next: AttemptNext,
    ) -> Result<Task, TransitionError> {
        let id = lease.task_id.to_string();
        let now = now_ms();
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|err| db_error("start ending an attempt", err))?;
        let row = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE id = ?"
        ))
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|err| db_error("read a task whose attempt ended", err))?;
        let Some(row) = row else {
            return Err(TransitionError::NotFound(lease.task_id));
        };
        let task = task_from_row(&row)?;
        let result_json = check_attempt_end(&task, lease, from, ended)?;
        sqlx::query(
            "INSERT OR REPLACE INTO task_runs (task_id, run_number, instruction, status, \
             message, result_json, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(i64::from(task.run_number))
        .bind(task.instruction())
        .bind(ended.status.as_str())
        .bind(&ended.message)
        .bind(result_json)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|err| db_error("record an ended attempt", err))?;
        let row = match next {
            AttemptNext::Queue => {
                let row = sqlx::query(concat!(
                    "UPDATE tasks SET status = 'QUEUED', run_number = run_number + 1, ",
                    "message = NULL, result_json = NULL, runner_ref = NULL, deadline_at = NULL, ",
                    "lease_holder = NULL, lease_expires_at = NULL, updated_at = ? ",
                    "WHERE id = ? RETURNING ",
                    task_columns!()
                ))
                .bind(now)
                .bind(&id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|err| db_error("queue the next attempt", err))?;
                sqlx::query(
                    "INSERT OR REPLACE INTO task_outbox (task_id, created_at) VALUES (?, ?)",
                )
                .bind(&id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|err| db_error("record the next attempt's outbox entry", err))?;
                row
            }
            AttemptNext::Choose(run) => sqlx::query(concat!(
                "UPDATE tasks SET chosen_run = ?, updated_at = ? WHERE id = ? RETURNING ",
                task_columns!()
            ))
            .bind(i64::from(run))
            .bind(now)
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| db_error("name the chosen attempt", err))?,
        };
        tx.commit()
            .await
            .map_err(|err| db_error("commit an ended attempt", err))?;
        Ok(task_from_row(&row)?)
    }
}
