//! Creating, reading, listing and moving tasks on MySQL: the rows the API writes, and
//! the compare-and-set every status change goes through (a conditional `UPDATE`, then
//! the row read back under its lock, [`MySqlTaskStore::update_then_read`]).

use sqlx::{MySql, QueryBuilder};

use super::{MySqlTaskStore, db_error, now_ms, pull_requests};
use crate::store::sqlite::rows::{Cursor, NewTaskRow, TASK_COLUMNS, task_from_row};
use crate::store::{
    Created, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, StoreError, TaskFilter, TaskPage, TransitionError,
    millis,
};
use crate::task::{NewTask, Task, TaskId, TaskStatus, TaskUpdate};

impl MySqlTaskStore {
    pub(super) async fn create_task(&self, new: NewTask) -> Result<(Task, Created), StoreError> {
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

    pub(super) async fn list_tasks(&self, filter: TaskFilter) -> Result<TaskPage, StoreError> {
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

    pub(super) async fn transition_task(
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
}

/// The update's result as stored JSON text.
pub(super) fn result_json(
    result: Option<&serde_json::Value>,
) -> Result<Option<String>, StoreError> {
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

pub(super) fn select_by_id() -> &'static str {
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
