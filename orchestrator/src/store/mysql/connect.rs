//! How the MySQL store reaches its server: the `[store.mysql]` settings (the password
//! from the environment or a file, never the config file) and the schema migration run
//! on connect.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::migrate::Migrator;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};

use super::db_error;
use crate::store::StoreError;

/// The schema, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/mysql");

/// Where the MySQL store is and how many connections it may hold. The password comes
/// from the environment or a file, never from the config file.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MySqlConfig {
    /// `mysql://USER@HOST:PORT/DATABASE` (a password written here is refused: use
    /// `password_env` or `password_file`).
    pub url: String,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// A file holding the password (trailing newline ignored), e.g. a mounted Secret.
    pub password_file: Option<std::path::PathBuf>,
    /// Connections per process.
    pub max_connections: u32,
    /// How long a query waits for a free connection (or a new one) before it fails as
    /// transient.
    pub acquire_timeout_ms: u64,
    /// How long a statement waits for a row lock before failing as transient (MySQL's
    /// own default is 50 s; a worker would rather retry sooner).
    pub lock_wait_timeout_secs: u32,
    /// Set by code (tests, the environment override): a full URL that may carry the
    /// password. Never read from the file.
    #[serde(skip)]
    pub resolved_url: Option<SecretString>,
}

impl Default for MySqlConfig {
    fn default() -> Self {
        Self {
            url: "mysql://agent@127.0.0.1:3306/agent".into(),
            password_env: Some("AGENT_MYSQL_PASSWORD".into()),
            password_file: None,
            max_connections: 10,
            acquire_timeout_ms: 5_000,
            lock_wait_timeout_secs: 10,
            resolved_url: None,
        }
    }
}

impl std::fmt::Debug for MySqlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlConfig")
            .field("url", &self.url)
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl MySqlConfig {
    /// A config for a full URL (password included), for tests and the environment
    /// override.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            resolved_url: Some(SecretString::from(url.into())),
            ..Self::default()
        }
    }

    /// The connect options: the URL, plus the password from the environment or file.
    pub(super) fn connect_options(&self) -> Result<MySqlConnectOptions, StoreError> {
        if let Some(url) = &self.resolved_url {
            return url
                .expose_secret()
                .parse::<MySqlConnectOptions>()
                .map_err(|err| StoreError::query("read the MySQL URL", redact(err)));
        }
        let parsed = url::Url::parse(&self.url)
            .map_err(|err| StoreError::query("read the MySQL URL in [store.mysql] url", err))?;
        if parsed.password().is_some() {
            return Err(StoreError::Refused(
                "[store.mysql] url carries a password; put it in the environment variable \
                 named by password_env, or in password_file"
                    .into(),
            ));
        }
        let mut options = self
            .url
            .parse::<MySqlConnectOptions>()
            .map_err(|err| StoreError::query("read the MySQL URL in [store.mysql] url", err))?;
        if let Some(password) = self.password()? {
            options = options.password(password.expose_secret());
        }
        Ok(options)
    }

    fn password(&self) -> Result<Option<SecretString>, StoreError> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|err| {
                StoreError::query(
                    format!("read the MySQL password file {}", path.display()),
                    err,
                )
            })?;
            return Ok(Some(SecretString::from(
                text.trim_end_matches(['\r', '\n']),
            )));
        }
        Ok(self
            .password_env
            .as_deref()
            .and_then(|name| std::env::var(name).ok())
            .filter(|value| !value.is_empty())
            .map(SecretString::from))
    }
}

/// Brings the schema up to date, one process at a time: replicas starting together
/// queue on a named lock of the server (sqlx's own lock does not stop two runners from
/// applying the first migration together), and each applies only what is missing.
pub(super) async fn migrate(pool: &MySqlPool) -> Result<(), StoreError> {
    const DOING: &str = "migrate the MySQL task store";
    let mut conn = pool.acquire().await.map_err(|err| db_error(DOING, err))?;
    let (locked,): (Option<i64>,) =
        sqlx::query_as("SELECT GET_LOCK(CONCAT('agent-migrate:', DATABASE()), 60)")
            .fetch_one(&mut *conn)
            .await
            .map_err(|err| db_error(DOING, err))?;
    if locked != Some(1) {
        return Err(StoreError::unavailable(
            DOING,
            std::io::Error::other("another process held the migration lock for 60 s"),
        ));
    }
    let migrated = MIGRATOR.run(&mut *conn).await;
    let released = sqlx::query("SELECT RELEASE_LOCK(CONCAT('agent-migrate:', DATABASE()))")
        .execute(&mut *conn)
        .await;
    migrated.map_err(|err| StoreError::query(DOING, err))?;
    released.map_err(|err| db_error(DOING, err))?;
    Ok(())
}

/// A URL parse error may quote the URL, password included: keep only its kind.
fn redact(err: sqlx::Error) -> std::io::Error {
    let kind = match err {
        sqlx::Error::Configuration(_) => "not a valid mysql:// URL",
        _ => "unusable URL",
    };
    std::io::Error::other(kind)
}
