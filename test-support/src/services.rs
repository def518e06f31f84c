//! Where the loopback services of `scripts/services` listen, for the cluster-profile
//! tests, and one fresh MySQL database per test so tests run in parallel.
//!
//! The settings come from the environment (`scripts/test` exports what `scripts/services`
//! wrote), else from the file `scripts/services` writes (`target/services.env`), else the
//! script's defaults. A service that cannot be reached fails the test with what to run;
//! it never skips (in CI or not: a skipped test would pass for the wrong reason).

use std::collections::HashMap;
use std::path::PathBuf;

/// A setting by name: the environment, then `target/services.env`, then `default`.
pub fn setting(name: &str, default: &str) -> String {
    if let Ok(value) = std::env::var(name)
        && !value.is_empty()
    {
        return value;
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::binaries::workspace_root().join("target"));
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

pub fn kafka_brokers() -> String {
    setting("AGENT_TEST_KAFKA_BROKERS", "127.0.0.1:9092")
}

pub fn s3_endpoint() -> String {
    setting("AGENT_TEST_S3_ENDPOINT", "http://127.0.0.1:9100")
}

pub fn s3_access_key() -> String {
    setting("AGENT_TEST_S3_ACCESS_KEY", "agent-dev")
}

pub fn s3_secret_key() -> String {
    setting("AGENT_TEST_S3_SECRET_KEY", "agent-dev-secret-only")
}

pub fn s3_bucket() -> String {
    setting("AGENT_TEST_S3_BUCKET", "codex-test")
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
        Self::create_on(&mysql_url()).await
    }

    /// As [`MySqlDatabase::create`], on the server of `admin_url` (a private one).
    pub async fn create_on(admin_url: &str) -> Self {
        let name = format!("agent_t_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::MySqlPool::connect(admin_url)
            .await
            .unwrap_or_else(|err| unreachable("MySQL", err));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
            admin_url: admin_url.to_string(),
        }
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
                let connect = sqlx::MySqlPool::connect(&url);
                // Bounded: a private server may be gone already.
                if let Ok(Ok(pool)) =
                    tokio::time::timeout(std::time::Duration::from_secs(5), connect).await
                {
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
