//! Leases and the reconciler's queries on MySQL.
//!
//! A row is *held* while `lease_holder` is set and `lease_expires_at` has not passed by
//! the server's clock; claims and take-overs only change rows nobody holds, and fenced
//! writes only rows that still name the writer's holder and attempt. Each is one
//! conditional `UPDATE` in a transaction, its affected rows checked, the row read back
//! under the lock; when it changes no row, the row is read again to say why.
//!
//! Reconcilers on several processes scan for the same stuck rows: the scans lock what
//! they return with `FOR UPDATE SKIP LOCKED`, so a scan passes over rows another process
//! is changing right now instead of waiting on them (the repair itself is still a
//! compare-and-set, so two reconcilers that find one row cannot both repair it).

use std::time::Duration;

use sqlx::{MySql, QueryBuilder};

use super::{Current, MySqlTaskStore, db_error, now_ms, result_json};
use crate::store::{Due, Lease, StoreError, TransitionError, millis};
use crate::task::{Task, TaskId, TaskStatus, TaskUpdate};

/// Nobody holds the row: no holder, or the holder's lease ran out by the server's clock.
macro_rules! not_held {
    () => {
        concat!(
            "(lease_holder IS NULL OR lease_expires_at IS NULL OR lease_expires_at < ",
            now_ms!(),
            ")"
        )
    };
}

impl MySqlTaskStore {
    pub(super) async fn claim_task(
        &self,
        id: TaskId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError> {
        let query = sqlx::query(concat!(
            "UPDATE tasks SET ",
            "status = CASE WHEN status = 'QUEUED' THEN 'PROCESSING' ELSE status END, ",
            "attempt = attempt + 1, lease_holder = ?, lease_expires_at = ",
            now_ms!(),
            " + ?, runner_ref = NULL, deadline_at = NULL, updated_at = ",
            now_ms!(),
            " WHERE id = ? AND (status = 'QUEUED' OR ",
            "(status IN ('PROCESSING', 'DOWNLOADING_CODE') AND ",
            not_held!(),
            "))"
        ))
        .bind(holder)
        .bind(millis(ttl))
        .bind(id.to_string());
        match self.update_then_read("claim a task", query, id).await? {
            Some(task) => leased(task),
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
        let query = sqlx::query(concat!(
            "UPDATE tasks SET lease_holder = ?, lease_expires_at = ",
            now_ms!(),
            " + ? WHERE id = ? AND status = ? AND attempt = ? AND ",
            not_held!()
        ))
        .bind(holder)
        .bind(millis(ttl))
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(i64::from(attempt));
        match self.update_then_read("take a task over", query, id).await? {
            Some(task) => leased(task),
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
        let query = sqlx::query(concat!(
            "UPDATE tasks SET lease_expires_at = ",
            now_ms!(),
            " + ? WHERE id = ? AND lease_holder = ? AND attempt = ? ",
            "AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
        ))
        .bind(millis(ttl))
        .bind(lease.task_id.to_string())
        .bind(&lease.holder)
        .bind(i64::from(lease.attempt));
        match self
            .update_then_read("renew a lease", query, lease.task_id)
            .await?
        {
            Some(task) => Ok(Lease {
                expires_at: task.lease_expires_at.unwrap_or(lease.expires_at),
                ..lease.clone()
            }),
            None => Err(self.lease_lost(lease.task_id).await),
        }
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
        let terminal = to.is_terminal();
        let query = sqlx::query(concat!(
            "UPDATE tasks SET status = ?, updated_at = ",
            now_ms!(),
            ", message = COALESCE(?, message), pr_url = COALESCE(?, pr_url), ",
            "result_json = COALESCE(?, result_json), runner_ref = COALESCE(?, runner_ref), ",
            "deadline_at = COALESCE(",
            now_ms!(),
            " + ?, deadline_at), ",
            "lease_holder = CASE WHEN ? THEN NULL ELSE lease_holder END, ",
            "lease_expires_at = CASE WHEN ? THEN NULL ELSE lease_expires_at END ",
            "WHERE id = ? AND status = ? AND lease_holder = ? AND attempt = ?"
        ))
        .bind(to.as_str())
        .bind(update.message.clone())
        .bind(update.pr_url.clone())
        .bind(result_json(update.result.as_ref())?)
        .bind(update.runner_ref.clone())
        .bind(update.deadline_in.map(millis))
        .bind(terminal)
        .bind(terminal)
        .bind(lease.task_id.to_string())
        .bind(from.as_str())
        .bind(&lease.holder)
        .bind(i64::from(lease.attempt));
        if let Some(task) = self
            .update_then_read("change a leased task", query, lease.task_id)
            .await?
        {
            return Ok(task);
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
        let released = sqlx::query(concat!(
            "UPDATE tasks SET lease_holder = NULL, lease_expires_at = ",
            now_ms!(),
            " + ? WHERE id = ? AND lease_holder = ? AND attempt = ? ",
            "AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
        ))
        .bind(millis(look_again_in))
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
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::from(limit);
        let mut query = QueryBuilder::<MySql>::new("");
        match due {
            Due::Outbox { older_than } => {
                query
                    .push(concat!(
                        "SELECT task_id FROM task_outbox WHERE created_at <= ",
                        now_ms!(),
                        " - "
                    ))
                    .push_bind(millis(older_than))
                    .push(" ORDER BY created_at, task_id LIMIT ")
                    .push_bind(limit);
            }
            Due::Queued { older_than } => {
                query
                    .push(concat!(
                        "SELECT id FROM tasks WHERE status = 'QUEUED' AND updated_at <= ",
                        now_ms!(),
                        " - "
                    ))
                    .push_bind(millis(older_than))
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
                    .push("SELECT id FROM tasks WHERE status IN (")
                    .push(statuses)
                    .push(concat!(
                        ") AND (lease_expires_at IS NULL OR lease_expires_at < ",
                        now_ms!(),
                        ") ORDER BY lease_expires_at, id LIMIT "
                    ))
                    .push_bind(limit);
            }
            Due::Expired { older_than } => {
                query
                    .push(concat!(
                        "SELECT id FROM tasks WHERE purged_at IS NULL ",
                        "AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND updated_at <= ",
                        now_ms!(),
                        " - "
                    ))
                    .push_bind(millis(older_than))
                    .push(" ORDER BY updated_at, id LIMIT ")
                    .push_bind(limit);
            }
            Due::PullRequests { stale } => {
                query
                    .push(concat!(
                        "SELECT p.task_id FROM task_pull_requests p JOIN tasks t ",
                        "ON t.id = p.task_id WHERE (p.state = 'OPENING' AND p.updated_at < ",
                        now_ms!(),
                        " - "
                    ))
                    .push_bind(millis(stale))
                    .push(concat!(
                        ") OR (p.state = 'REQUESTED' ",
                        "AND t.status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND t.updated_at < ",
                        now_ms!(),
                        " - "
                    ))
                    .push_bind(millis(stale))
                    .push(") ORDER BY p.updated_at, p.task_id LIMIT ")
                    .push_bind(limit);
            }
        }
        query.push(" FOR UPDATE SKIP LOCKED");
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|err| db_error("find tasks needing repair", err))?;
        let rows: Vec<(String,)> = query
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(|err| db_error("find tasks needing repair", err))?;
        tx.commit()
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
