//! The API's settings: limits, the git host allow list, artifact URL lifetime.
//!
//! Read from the `[api]` table of the config file (TOML); every field has a default, so
//! an empty file (or none) gives the embedded laptop setup. Command-line flags for the
//! listen address and data directory are applied on top by the binary.

use std::time::Duration;

use orchestrator::config::WorkspaceConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where to listen (`--listen` wins).
    pub listen: String,
    /// How agents and clients reach this server, for signed blob URLs; by default
    /// `http://` plus the listen address (`127.0.0.1` when listening on all interfaces).
    pub public_url: Option<String>,
    /// Deprecated: `orchestrator.workspace.allow_git_hosts`, where the worker reads it
    /// too. Entries here are added to it.
    pub allow_git_hosts: Vec<String>,
    /// Deprecated: `orchestrator.workspace.allow_file_git_urls`. `true` here turns it on.
    pub allow_file_git_urls: bool,
    /// Largest JSON body on the API routes. It must hold the largest body the OpenAPI
    /// document calls valid (a 32,768-character description and a 65,536-character setup,
    /// each character up to six bytes once JSON-escaped: about 600 KB), so that every
    /// oversized field is refused by name (422) rather than the whole body by size (413).
    pub json_body_limit: usize,
    /// Largest multipart body (a task with its zip).
    pub multipart_body_limit: usize,
    /// Largest body a signed PUT to `/blobs/...` may carry (agent outputs).
    pub blob_put_limit: usize,
    /// How long an artifact redirect URL stays valid.
    pub artifact_url_ttl_secs: u64,
    /// Time allowed for a request to produce its response headers.
    pub request_timeout_secs: u64,
    /// How long a token's owner is remembered without asking the store: a token revoked
    /// by another process is refused within this time.
    pub token_cache_secs: u64,
    /// How long an unknown token is refused without asking the store again.
    pub unknown_token_cache_secs: u64,
    /// Uploads (multipart task creations, PUTs to `/blobs/...`) in progress at once;
    /// past it an upload is refused with 503 and `Retry-After`. 0: no cap.
    pub max_concurrent_uploads: usize,
    /// Unfinished tasks one owner may have; past it a create is refused with 429 and
    /// `Retry-After`. 0: no cap.
    pub max_live_tasks_per_owner: u64,
    /// Submissions (new tasks, follow-ups) one owner may make per window; past it one is
    /// refused with 429 and `Retry-After`. Counted in the status cache (shared by every
    /// replica on Redis; fails open when the cache is down). 0: no limit.
    pub submissions_per_window: u64,
    /// The rate limit's window, in seconds.
    pub submission_window_secs: u64,
    /// Time a `/blobs/...` request may take to produce its response headers (a PUT:
    /// its whole body).
    pub blob_timeout_secs: u64,
    /// A `/blobs/...` body (either way) on which no byte moved for this long is cut.
    pub blob_idle_timeout_secs: u64,
    /// `/readyz` fails while the data folder's disk has less free space than this.
    /// 0: not checked.
    pub min_free_disk_mb: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            allow_git_hosts: Vec::new(),
            allow_file_git_urls: false,
            json_body_limit: 1024 * 1024,
            multipart_body_limit: 100 * 1024 * 1024,
            blob_put_limit: 512 * 1024 * 1024,
            artifact_url_ttl_secs: 300,
            request_timeout_secs: 120,
            token_cache_secs: 30,
            unknown_token_cache_secs: 10,
            max_concurrent_uploads: 16,
            max_live_tasks_per_owner: 100,
            submissions_per_window: 0,
            submission_window_secs: 60,
            blob_timeout_secs: 1800,
            blob_idle_timeout_secs: 60,
            min_free_disk_mb: 100,
        }
    }
}

impl ApiConfig {
    /// Moves the deprecated `[api]` git settings into the one place they now live,
    /// `[orchestrator.workspace]`, so the API and the worker check URLs alike. Returns
    /// whether any was set (the binary warns).
    pub fn fold_deprecated_into(&self, workspace: &mut WorkspaceConfig) -> bool {
        for host in &self.allow_git_hosts {
            if !workspace.allow_git_hosts.contains(host) {
                workspace.allow_git_hosts.push(host.clone());
            }
        }
        workspace.allow_file_git_urls |= self.allow_file_git_urls;
        !self.allow_git_hosts.is_empty() || self.allow_file_git_urls
    }

    pub fn artifact_url_ttl(&self) -> Duration {
        Duration::from_secs(self.artifact_url_ttl_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn blob_timeout(&self) -> Duration {
        Duration::from_secs(self.blob_timeout_secs.max(1))
    }

    pub fn blob_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.blob_idle_timeout_secs.max(1))
    }

    pub fn token_cache(&self) -> crate::auth::TokenCache {
        crate::auth::TokenCache::new(
            Duration::from_secs(self.token_cache_secs),
            Duration::from_secs(self.unknown_token_cache_secs),
        )
    }
}
