//! `[orchestrator.pull_requests]`: where pull requests are opened and with which tokens.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// How pull requests are opened.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PullRequestConfig {
    /// The git host's REST API: GitHub's, or a GitHub Enterprise server's
    /// (`https://HOST/api/v3`); any host that speaks the same shapes.
    pub api_base: String,
    /// Whether a task may bring its own token (kept sealed, see `key_file`). When false,
    /// only owners with a configured token may ask for pull requests.
    pub accept_task_tokens: bool,
    /// Owner -> the environment variable holding that owner's token (preferred over a
    /// token sent with the task).
    pub owner_token_env: BTreeMap<String, String>,
    /// Owner -> a file holding that owner's token (a mounted secret; trailing white
    /// space ignored). Used when `owner_token_env` gives none.
    pub owner_token_file: BTreeMap<String, PathBuf>,
    /// The key (64 hex digits) that seals tokens sent with tasks; `{data_dir}/pr-token.key`
    /// by default, created on first use. Every process of a deployment must share it.
    pub key_file: Option<PathBuf>,
    /// A task's branch is this followed by the task id.
    pub branch_prefix: String,
    /// Where a task's page is, for the link back in the pull request's body
    /// (`{task_link_base}/api/v1/tasks/{id}`); the API's public URL when not set.
    pub task_link_base: Option<String>,
    /// A try to open that has not ended after this long is taken as abandoned (its
    /// process died) and may be retried.
    pub stale_after_secs: u64,
    /// The whole push-and-open step's time limit.
    pub timeout_secs: u64,
    /// Tokens read from the environment by [`PullRequestConfig::resolve_env`].
    #[serde(skip)]
    pub resolved_tokens: BTreeMap<String, SecretString>,
}

impl Default for PullRequestConfig {
    fn default() -> Self {
        Self {
            api_base: "https://api.github.com".into(),
            accept_task_tokens: true,
            owner_token_env: BTreeMap::new(),
            owner_token_file: BTreeMap::new(),
            key_file: None,
            branch_prefix: "agent/".into(),
            task_link_base: None,
            stale_after_secs: 600,
            timeout_secs: 300,
            resolved_tokens: BTreeMap::new(),
        }
    }
}

impl PullRequestConfig {
    /// Reads the owners' tokens from the variables `owner_token_env` names.
    pub fn resolve_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        for (owner, name) in &self.owner_token_env {
            if let Some(token) = var(name).map(|t| t.trim().to_string()) {
                self.resolved_tokens
                    .insert(owner.clone(), SecretString::from(token));
            }
        }
    }

    /// Whether `owner` has a token configured on the server.
    pub fn has_owner_token(&self, owner: &str) -> bool {
        self.resolved_tokens.contains_key(owner) || self.owner_token_file.contains_key(owner)
    }

    /// `owner`'s configured token, if any and readable.
    pub fn owner_token(&self, owner: &str) -> Option<SecretString> {
        if let Some(token) = self.resolved_tokens.get(owner) {
            return Some(token.clone());
        }
        let path = self.owner_token_file.get(owner)?;
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => {
                Some(SecretString::from(text.trim().to_string()))
            }
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(%owner, path = %path.display(), error = %err, "cannot read an owner's pull request token file");
                None
            }
        }
    }

    pub fn stale_after(&self) -> Duration {
        Duration::from_secs(self.stale_after_secs)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}
