//! Where the loopback services of `scripts/services` listen, for the cluster-profile
//! tests, and one fresh MySQL database per test so tests run in parallel.
//!
//! The settings come from the environment (`scripts/test` exports what `scripts/services`
//! wrote), else from the file `scripts/services` writes, else the script's defaults. A
//! service that cannot be reached fails the test with what to run; it never skips (in CI
//! or not: a skipped test would pass for the wrong reason).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use orchestrator::store::{MySqlConfig, MySqlTaskStore};

/// A setting by name: the environment, then `target/services.env`, then `default`.
pub fn setting(name: &str, default: &str) -> String {
    if let Ok(value) = std::env::var(name)
        && !value.is_empty()
    {
        return value;
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let file: HashMap<String, String> = std::fs::read_to_string(target.join("services.env"))
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    file.get(name)
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

pub fn mysql_url() -> String {
    setting(
        "AGENT_TEST_MYSQL_URL",
        "mysql://agent:agent-dev-only@127.0.0.1:3306/agent",
    )
}

pub fn redis_url() -> String {
    setting("AGENT_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// Fails the test: the service is needed and not there.
pub fn unreachable(service: &str, err: impl std::fmt::Display) -> ! {
    panic!(
        "{service} is unreachable ({err}); start the loopback services with \
         `scripts/services` (CI={})",
        std::env::var("CI").unwrap_or_default()
    )
}

/// A database of its own for one test, dropped when this guard is.
pub struct MySqlDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl MySqlDatabase {
    /// Creates `agent_t_<random>` on the test server (the test user may create databases
    /// named `agent...`).
    pub async fn create() -> Self {
        let admin_url = mysql_url();
        let name = format!("agent_t_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::MySqlPool::connect(&admin_url)
            .await
            .unwrap_or_else(|err| unreachable("MySQL", err));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
            admin_url,
        }
    }

    pub async fn store(&self) -> MySqlTaskStore {
        MySqlTaskStore::connect(&MySqlConfig::from_url(self.url.clone()))
            .await
            .unwrap()
    }
}

impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // A runtime of its own: the test's may be shutting down.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(pool) = sqlx::MySqlPool::connect(&url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS `{name}`"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}
