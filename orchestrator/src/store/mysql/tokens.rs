//! API tokens and counts on MySQL: the queries that are not about one task's status.
//! The same contract as SQLite's (`store_contract`); times are the server's clock.

use super::{MySqlTaskStore, db_error, now_ms};
use crate::store::{StoreError, TOKEN_ID_LEN, TokenInfo};
use crate::task::{TaskId, TaskStatus};

/// The statuses a live task is in, for `IN (...)`; a macro so the SQL stays
/// `&'static str`.
macro_rules! live {
    () => {
        "'PENDING', 'QUEUED', 'PROCESSING', 'DOWNLOADING_CODE', 'RUNNING_AGENT', \
         'UPLOADING_RESULTS'"
    };
}

type TokenRow = (String, String, i64, Option<i64>);

fn token_info((hash, owner, created_at, revoked_at): TokenRow) -> TokenInfo {
    TokenInfo {
        id: hash.chars().take(TOKEN_ID_LEN).collect(),
        owner,
        created_at,
        revoked_at,
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

impl MySqlTaskStore {
    pub(super) async fn insert_token(
        &self,
        owner: &str,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        // Registering the same token again (a dev token at every start) is a no-op; the
        // checks below refuse handing one token to a second owner, or reviving it.
        sqlx::query(concat!(
            "INSERT INTO api_tokens (token_hash, owner, created_at) VALUES (?, ?, ",
            now_ms!(),
            ") ON DUPLICATE KEY UPDATE token_hash = token_hash"
        ))
        .bind(token_hash)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(|err| db_error("record an API token", err))?;
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT owner, revoked_at FROM api_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|err| db_error("look up an API token", err))?;
        match row {
            Some((existing, None)) if existing == owner => Ok(()),
            Some((_, Some(_))) => Err(StoreError::Refused(
                "this API token was revoked; create a new token instead".to_string(),
            )),
            _ => Err(StoreError::Refused(format!(
                "this API token is already registered to another owner than `{owner}`; \
                 create a new token instead"
            ))),
        }
    }

    pub(super) async fn token_owner(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT owner FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|err| db_error("look up an API token", err))?;
        Ok(row.map(|(owner,)| owner))
    }

    pub(super) async fn all_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT token_hash, owner, created_at, revoked_at FROM api_tokens \
             ORDER BY created_at, token_hash",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|err| db_error("list API tokens", err))?;
        Ok(rows.into_iter().map(token_info).collect())
    }

    pub(super) async fn revoke(&self, id: &str) -> Result<Option<TokenInfo>, StoreError> {
        if id.len() != TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Refused(format!(
                "a token id is the {TOKEN_ID_LEN} hex digits `token list` shows"
            )));
        }
        let pattern = format!("{}%", id.to_ascii_lowercase());
        sqlx::query(concat!(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ",
            now_ms!(),
            ") WHERE token_hash LIKE ?"
        ))
        .bind(&pattern)
        .execute(&self.pool)
        .await
        .map_err(|err| db_error("revoke an API token", err))?;
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT token_hash, owner, created_at, revoked_at FROM api_tokens \
             WHERE token_hash LIKE ? ORDER BY token_hash LIMIT 1",
        )
        .bind(&pattern)
        .fetch_optional(&self.pool)
        .await
        .map_err(|err| db_error("read a revoked API token", err))?;
        Ok(row.map(token_info))
    }

    pub(super) async fn owner_live_tasks(&self, owner: &str) -> Result<u64, StoreError> {
        let sql = concat!(
            "SELECT COUNT(*) FROM tasks WHERE owner = ? AND status IN (",
            live!(),
            ")"
        );
        let (n,): (i64,) = sqlx::query_as(sql)
            .bind(owner)
            .fetch_one(&self.pool)
            .await
            .map_err(|err| db_error("count an owner's live tasks", err))?;
        Ok(count(n))
    }

    pub(super) async fn live_by_status(&self) -> Result<Vec<(TaskStatus, u64)>, StoreError> {
        let sql = concat!(
            "SELECT status, COUNT(*) FROM tasks WHERE status IN (",
            live!(),
            ") GROUP BY status"
        );
        let rows: Vec<(String, i64)> = sqlx::query_as(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|err| db_error("count live tasks", err))?;
        rows.into_iter()
            .map(|(status, n)| {
                let status = status.parse().map_err(|err| StoreError::Corrupt {
                    id: TaskId(uuid::Uuid::nil()).to_string(),
                    reason: format!("counting by status: {err}"),
                })?;
                Ok((status, count(n)))
            })
            .collect()
    }
}
