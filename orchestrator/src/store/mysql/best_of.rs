//! Best-of-N on MySQL: the row locked (`FOR UPDATE`), an ended attempt recorded and the
//! next one queued (or the chosen one named), in one transaction (see
//! [`TaskStore::end_attempt`](crate::store::TaskStore::end_attempt)).

use super::{MySqlTaskStore, db_error, now_ms, select_by_id};
use crate::store::sqlite::rows::task_from_row;
use crate::store::{AttemptNext, EndedRun, Lease, TransitionError, check_attempt_end};
use crate::task::{Task, TaskStatus};

impl MySqlTaskStore {
    pub(super) async fn end_attempt_tx(
        &self,
        lease: &Lease,
        from: TaskStatus,
        ended: &EndedRun,
        next: AttemptNext,
    ) -> Result<Task, TransitionError> {
        let id = lease.task_id.to_string();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|err| db_error("start ending an attempt", err))?;
        let row = sqlx::query(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE id = ? FOR UPDATE"
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
        sqlx::query(concat!(
            "INSERT INTO task_runs (task_id, run_number, instruction, status, message, ",
            "result_json, finished_at) VALUES (?, ?, ?, ?, ?, ?, ",
            now_ms!(),
            ") ON DUPLICATE KEY UPDATE status = VALUES(status), message = VALUES(message), ",
            "result_json = VALUES(result_json), finished_at = VALUES(finished_at)"
        ))
        .bind(&id)
        .bind(i64::from(task.run_number))
        .bind(task.instruction())
        .bind(ended.status.as_str())
        .bind(&ended.message)
        .bind(result_json)
        .execute(&mut *tx)
        .await
        .map_err(|err| db_error("record an ended attempt", err))?;
        match next {
            AttemptNext::Queue => {
                sqlx::query(concat!(
                    "UPDATE tasks SET status = 'QUEUED', run_number = run_number + 1, ",
                    "message = NULL, result_json = NULL, runner_ref = NULL, deadline_at = NULL, ",
                    "lease_holder = NULL, lease_expires_at = NULL, updated_at = ",
                    now_ms!(),
                    " WHERE id = ?"
                ))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(|err| db_error("queue the next attempt", err))?;
                sqlx::query(concat!(
                    "INSERT INTO task_outbox (task_id, created_at) VALUES (?, ",
                    now_ms!(),
                    ") ON DUPLICATE KEY UPDATE created_at = VALUES(created_at)"
                ))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(|err| db_error("record the next attempt's outbox entry", err))?;
            }
            AttemptNext::Choose(run) => {
                sqlx::query(concat!(
                    "UPDATE tasks SET chosen_run = ?, updated_at = ",
                    now_ms!(),
                    " WHERE id = ?"
                ))
                .bind(i64::from(run))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(|err| db_error("name the chosen attempt", err))?;
            }
        }
        let row = sqlx::query(select_by_id())
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| db_error("read a task whose attempt ended", err))?;
        tx.commit()
            .await
            .map_err(|err| db_error("commit an ended attempt", err))?;
        Ok(task_from_row(&row)?)
    }
}
