//! Leases and the reconciler's queries on SQLite.
//!
//! A row is *held* while `lease_holder` is set and `lease_expires_at` has not passed;
//! claims and take-overs only change rows nobody holds, and fenced writes only rows that
//! still name the writer's holder and attempt. Each is one conditional `UPDATE ...
//! RETURNING`; when it changes no row, the row is read back to say why.

use std::time::Duration;

use sqlx::{QueryBuilder, Sqlite};

use super::rows::{TASK_COLUMNS, task_from_row};
use super::{Current, SqliteTaskStore, db_error, result_json};
use crate::store::{Due, Lease, StoreError, TransitionError, millis};
use crate::task::{Task, TaskId, TaskStatus, TaskUpdate, now_ms};

/// Nobody holds the row: no holder, or the holder's lease ran out (`?` is now).
const NOT_HELD: &str = "(lease_holder IS NULL OR lease_expires_at IS NULL OR lease_expires_at < ?)";

impl SqliteTaskStore {
    pub(super) async fn claim_task(
        &self,
        id: TaskId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError> {
        let now = now_ms();
        let sql = format!(
            "UPDATE tasks SET \
               status = CASE WHEN status = 'QUEUED' THEN 'PROCESSING' ELSE status END, \
               attempt = attempt + 1, lease_holder = ?, lease_expires_at = ?, \
               runner_ref = NULL, deadline_at = NULL, updated_at = ? \
             WHERE id = ? AND (status = 'QUEUED' OR \
               (status IN ('PROCESSING', 'DOWNLOADING_CODE') AND {NOT_HELD})) \
             RETURNING {TASK_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .bind(now.saturating_add(millis(ttl)))
            .bind(now)
            .bind(id.to_string())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("claim a task", err))?;
        match row {
            Some(row) => leased(task_from_row(&row)?),
            None => Err(self.explain(id, TaskStatus::Queued).await),
        }
    }

    pub(super) async fn take_over_task(
        &self,
        id: TaskId,
        status: TaskStatus,
        attempt: u32,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError> {
        if !crate::store::LEASED.contains(&status) {
            return Err(TransitionError::Illegal {
                from: status,
                to: status,
            });
        }
        let now = now_ms();
        let sql = format!(
            "UPDATE tasks SET lease_holder = ?, lease_expires_at = ? \
             WHERE id = ? AND status = ? AND attempt = ? AND {NOT_HELD} \
             RETURNING {TASK_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .bind(now.saturating_add(millis(ttl)))
            .bind(id.to_string())
            .bind(status.as_str())
            .bind(i64::from(attempt))
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("take a task over", err))?;
        match row {
            Some(row) => leased(task_from_row(&row)?),
            None => Err(match self.current(id).await? {
                None => TransitionError::NotFound(id),
                Some(now) if now.status != status => TransitionError::Conflict {
                    id,
                    expected: status,
                    actual: now.status,
                },
                // Same status: another attempt, or someone holds it.
                Some(now) => TransitionError::LeaseLost {
                    id,
                    status: now.status,
                },
            }),
        }
    }

    pub(super) async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Lease, TransitionError> {
        let expires_at = now_ms().saturating_add(millis(ttl));
        let renewed = sqlx::query(
            "UPDATE tasks SET lease_expires_at = ? \
             WHERE id = ? AND lease_holder = ? AND attempt = ? \
             AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')",
        )
        .bind(expires_at)
        .bind(lease.task_id.to_string())
        .bind(&lease.holder)
        .bind(i64::from(lease.attempt))
        .execute(&self.pool)
        .await
        .map_err(|err| db_error("renew a lease", err))?;
        if renewed.rows_affected() == 1 {
            return Ok(Lease {
                expires_at,
                ..lease.clone()
            });
        }
        Err(self.lease_lost(lease.task_id).await)
    }

    pub(super) async fn advance_leased(
        &self,
        lease: &Lease,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError> {
        if from != to && !from.can_move_to(to) || from.is_terminal() {
            return Err(TransitionError::Illegal { from, to });
        }
        let now = now_ms();
        let terminal = to.is_terminal();
        let sql = format!(
            "UPDATE tasks SET status = ?, updated_at = ?, \
               message = COALESCE(?, message), pr_url = COALESCE(?, pr_url), \
               result_json = COALESCE(?, result_json), runner_ref = COALESCE(?, runner_ref), \
               deadline_at = COALESCE(?, deadline_at), \
               lease_holder = CASE WHEN ? THEN NULL ELSE lease_holder END, \
               lease_expires_at = CASE WHEN ? THEN NULL ELSE lease_expires_at END \
             WHERE id = ? AND status = ? AND lease_holder = ? AND attempt = ? \
             RETURNING {TASK_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(now)
            .bind(update.message.clone())
            .bind(update.pr_url.clone())
            .bind(result_json(&update)?)
            .bind(update.runner_ref.clone())
            .bind(update.deadline_in.map(|d| now.saturating_add(millis(d))))
            .bind(terminal)
            .bind(terminal)
            .bind(lease.task_id.to_string())
            .bind(from.as_str())
            .bind(&lease.holder)
            .bind(i64::from(lease.attempt))
            .fetch_optional(&self.pool)
            .await
            .map_err(|err| db_error("change a leased task", err))?;
        if let Some(row) = row {
            return Ok(task_from_row(&row)?);
        }
        Err(match self.current(lease.task_id).await? {
            None => TransitionError::NotFound(lease.task_id),
            Some(now) if !holds(&now, lease) => TransitionError::LeaseLost {
                id: lease.task_id,
                status: now.status,
            },
            Some(now) => TransitionError::Conflict {
                id: lease.task_id,
                expected: from,
                actual: now.status,
            },
        })
    }

    pub(super) async fn release_lease(
        &self,
        lease: &Lease,
        look_again_in: Duration,
    ) -> Result<(), TransitionError> {
        let released = sqlx::query(
            "UPDATE tasks SET lease_holder = NULL, lease_expires_at = ? \
             WHERE id = ? AND lease_holder = ? AND attempt = ? \
             AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')",
        )
        .bind(now_ms().saturating_add(millis(look_again_in)))
        .bind(lease.task_id.to_string())
        .bind(&lease.holder)
        .bind(i64::from(lease.attempt))
        .execute(&self.pool)
        .await
        .map_err(|err| db_error("release a lease", err))?;
        if released.rows_affected() == 1 {
            Ok(())
        } else {
            Err(self.lease_lost(lease.task_id).await)
        }
    }

    pub(super) async fn due_tasks(&self, due: Due, limit: u32) -> Result<Vec<TaskId>, StoreError> {
        let now = now_ms();
        let limit = i64::from(limit);
        let mut query = QueryBuilder::<Sqlite>::new("");
        match due {
            Due::Outbox { older_than } => {
                query
                    .push("SELECT task_id FROM task_outbox WHERE created_at <= ")
                    .push_bind(now.saturating_sub(millis(older_than)))
                    .push(" ORDER BY created_at, task_id LIMIT ")
                    .push_bind(limit);
            }
            Due::Queued { older_than } => {
                query
                    .push("SELECT id FROM tasks WHERE status = 'QUEUED' AND updated_at <= ")
                    .push_bind(now.saturating_sub(millis(older_than)))
                    .push(" ORDER BY updated_at, id LIMIT ")
                    .push_bind(limit);
            }
            Due::Preparing | Due::Running => {
                let statuses = if due == Due::Preparing {
                    "'PROCESSING', 'DOWNLOADING_CODE'"
                } else {
                    "'RUNNING_AGENT', 'UPLOADING_RESULTS'"
                };
                // Expiry, not holder: a released row waits until its look-again time.
                query
                    .push(format!(
                        "SELECT id FROM tasks WHERE status IN ({statuses}) "
                    ))
                    .push("AND (lease_expires_at IS NULL OR lease_expires_at < ")
                    .push_bind(now)
                    .push(") ORDER BY lease_expires_at, id LIMIT ")
                    .push_bind(limit);
            }
            Due::Expired { older_than } => {
                // The partial index `tasks_unpurged` holds exactly these rows.
                query
                    .push(
                        "SELECT id FROM tasks WHERE purged_at IS NULL \
                         AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND updated_at <= ",
                    )
                    .push_bind(now.saturating_sub(millis(older_than)))
                    .push(" ORDER BY updated_at, id LIMIT ")
                    .push_bind(limit);
            }
            Due::PullRequests { stale } => {
                let before = now.saturating_sub(millis(stale));
                query
                    .push(
                        "SELECT p.task_id FROM task_pull_requests p JOIN tasks t ON t.id = p.task_id \
                         WHERE (p.state = 'OPENING' AND p.updated_at < ",
                    )
                    .push_bind(before)
                    .push(
                        ") OR (p.state = 'REQUESTED' \
                         AND t.status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND t.updated_at < ",
                    )
                    .push_bind(before)
                    .push(") ORDER BY p.updated_at, p.task_id LIMIT ")
                    .push_bind(limit);
            }
        }
        let rows: Vec<(String,)> = query
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(|err| db_error("find tasks needing repair", err))?;
        rows.into_iter()
            .map(|(id,)| {
                id.parse().map_err(|err| StoreError::Corrupt {
                    id: id.clone(),
                    reason: format!("bad id: {err}"),
                })
            })
            .collect()
    }

    /// Why a lease operation changed no row: the task's current status, or not found.
    async fn lease_lost(&self, id: TaskId) -> TransitionError {
        match self.current(id).await {
            Err(err) => err.into(),
            Ok(None) => TransitionError::NotFound(id),
            Ok(Some(now)) => TransitionError::LeaseLost {
                id,
                status: now.status,
            },
        }
    }
}

/// Whether the row read back still names `lease`.
fn holds(now: &Current, lease: &Lease) -> bool {
    now.holder.as_deref() == Some(lease.holder.as_str())
        && now.attempt == i64::from(lease.attempt)
        && !now.status.is_terminal()
}

/// A task just claimed or taken over, with the lease its row now records.
fn leased(task: Task) -> Result<(Task, Lease), TransitionError> {
    let lease = Lease::of(&task).ok_or_else(|| StoreError::Corrupt {
        id: task.id.to_string(),
        reason: "a claimed row names no lease".to_string(),
    })?;
    Ok((task, lease))
}
