//! Where the Redis cache is and how long it keeps things. The password comes from the
//! environment or a file, never from the config file.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::cache::CacheError;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisCacheConfig {
    /// `redis://HOST:PORT/DB` (or `rediss://`); a password written here is refused.
    pub url: String,
    /// The environment variable holding the password (and `username` the ACL user).
    pub password_env: Option<String>,
    /// A file holding the password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    pub username: Option<String>,
    /// Prefix of every key, so several deployments can share a server.
    pub key_prefix: String,
    /// How long a task's cached status lives (the store stays the truth).
    pub status_ttl_secs: u64,
    /// How long a task's events live after its last publish.
    pub events_ttl_secs: u64,
    /// Events kept per task (approximately: Redis trims whole blocks); older ones are
    /// dropped and readers see the gap in the numbers.
    pub max_events_per_task: u64,
    /// Longest single wait of a live reader for new events; it then checks again.
    pub read_block_ms: u64,
    pub connect_timeout_ms: u64,
    /// Longest wait for any one answer.
    pub response_timeout_ms: u64,
    /// Set by code (tests, the environment override): a full URL that may carry the
    /// password. Never read from the file.
    #[serde(skip)]
    pub resolved_url: Option<SecretString>,
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            password_env: Some("AGENT_REDIS_PASSWORD".into()),
            password_file: None,
            username: None,
            key_prefix: "agent".into(),
            status_ttl_secs: 24 * 3600,
            events_ttl_secs: 24 * 3600,
            max_events_per_task: 10_000,
            read_block_ms: 1_000,
            connect_timeout_ms: 1_000,
            response_timeout_ms: 2_000,
            resolved_url: None,
        }
    }
}

impl std::fmt::Debug for RedisCacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCacheConfig")
            .field("url", &self.url)
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCacheConfig {
    /// A config for a full URL (password included), for tests and the environment
    /// override.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            resolved_url: Some(SecretString::from(url.into())),
            ..Self::default()
        }
    }

    pub fn read_block(&self) -> Duration {
        Duration::from_millis(self.read_block_ms.max(1))
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms.max(1))
    }

    pub(super) fn client(&self) -> Result<::redis::Client, CacheError> {
        let bad = |why: &str| CacheError::Corrupt {
            context: "the Redis URL in [cache.redis] url".into(),
            source: why.to_string().into(),
        };
        if let Some(url) = &self.resolved_url {
            // The error text could quote the URL, password included: keep its kind only.
            return ::redis::Client::open(url.expose_secret())
                .map_err(|_| bad("not a valid redis:// URL"));
        }
        let mut url = url::Url::parse(&self.url).map_err(|_| bad("not a valid URL"))?;
        if url.password().is_some() {
            return Err(bad(
                "it carries a password; put it in the environment variable named by \
                 password_env, or in password_file",
            ));
        }
        if let Some(user) = &self.username {
            url.set_username(user)
                .map_err(|()| bad("cannot hold a user"))?;
        }
        if let Some(password) = self.password()? {
            url.set_password(Some(password.expose_secret()))
                .map_err(|()| bad("cannot hold a password"))?;
        }
        ::redis::Client::open(url.as_str()).map_err(|_| bad("not a valid redis:// URL"))
    }

    fn password(&self) -> Result<Option<SecretString>, CacheError> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|err| CacheError::Unavailable {
                context: format!("reading the Redis password file {}", path.display()),
                source: Box::new(err),
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
