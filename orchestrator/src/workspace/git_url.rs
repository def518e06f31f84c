//! Which git URLs a task may name: one policy, checked by the API at submission and by
//! the worker again at clone time.
//!
//! The worker clones from inside our network, so a git URL is as dangerous as an HTTP
//! request made on the client's behalf: `file://` would read the server's own disk, and a
//! loopback, private or metadata host would reach services that trust the network. Only
//! the URL kinds the clone can guard pass: `https` and `git` (ssh would need keys this
//! server does not hold, and its connections could not go through the guard), plus
//! `file://` when the test setting allows it. A URL carrying credentials
//! (`https://user:token@host/...`) is refused: the URL is stored with the task and shown
//! to whoever reads it.
//!
//! Hosts must be public after DNS resolution, by the address rules of the agent's own
//! SSRF guard ([`tools::net_guard`]), unless the operator allow-listed them
//! (`orchestrator.workspace.allow_git_hosts`). The API resolves to refuse early with a
//! clear 4xx; the clone resolves once more, checks, and then connects only to the
//! addresses it checked (see `git_relay`), so a DNS answer that changes in between
//! cannot steer it.

use std::net::{SocketAddr, ToSocketAddrs};

use tools::net_guard::{AllowList, HostKey, classify, is_metadata_name};
use url::{Host, Url};

use super::WorkspaceError;
use super::git::redact_url;
use crate::config::WorkspaceConfig;

/// Where the operator lifts the address checks; named in every refusal.
pub const ALLOW_SETTING: &str = "orchestrator.workspace.allow_git_hosts";
const MAX_URL_LEN: usize = 2048;
/// The git protocol's port, which the `url` crate does not know.
const GIT_PORT: u16 = 9418;

/// An `allow_git_hosts` entry that is not a host or `host:port`.
#[derive(Debug, thiserror::Error)]
#[error("{ALLOW_SETTING} entry `{entry}` is not a host name, IP address or host:port: {reason}")]
pub struct InvalidGitHost {
    pub entry: String,
    pub reason: String,
}

/// The rules a git URL is checked against.
#[derive(Debug, Clone, Default)]
pub struct GitUrlPolicy {
    allow: AllowList,
    allow_file: bool,
}

/// How a checked URL is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitTransport {
    /// Smart HTTP over TLS.
    Https,
    /// The git daemon protocol.
    Git,
    /// A local path (tests and demos only).
    File,
}

/// A git URL that passed the syntax checks (no DNS yet).
#[derive(Debug, Clone)]
pub struct GitUrl {
    url: Url,
    transport: GitTransport,
}

impl GitUrl {
    /// The URL in normal form (lower-case host, IDN as punycode): what the clone fetches,
    /// so the host it asks for is the host that was checked.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn transport(&self) -> GitTransport {
        self.transport
    }

    /// The host as it appears in the URL (IPv6 without brackets); empty for `file://`.
    pub fn host(&self) -> String {
        match self.host_key() {
            Some(HostKey::Ip(ip)) => ip.to_string(),
            Some(HostKey::Name(name)) => name,
            None => String::new(),
        }
    }

    /// The host in the form the allow list compares. `git://` is not a scheme the URL
    /// standard knows, so its host comes back as an opaque name even when it is an
    /// address; it is read as one here.
    fn host_key(&self) -> Option<HostKey> {
        let host = self.url.host()?;
        Some(match host {
            Host::Domain(name) => match name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
            {
                Ok(ip) => HostKey::Ip(ip),
                Err(_) => HostKey::from_url_host(Host::Domain(name)),
            },
            other => HostKey::from_url_host(other),
        })
    }

    /// Whether the host was written as a name (so DNS decides where it points).
    fn is_name(&self) -> bool {
        matches!(self.host_key(), Some(HostKey::Name(_)))
    }

    pub fn port(&self) -> u16 {
        match self.transport {
            GitTransport::Git => self.url.port().unwrap_or(GIT_PORT),
            _ => self.url.port_or_known_default().unwrap_or(443),
        }
    }

    /// The URL's path and query, as the git protocol asks for it.
    pub fn path_and_query(&self) -> String {
        match self.url.query() {
            Some(query) => format!("{}?{query}", self.url.path()),
            None => self.url.path().to_string(),
        }
    }
}

impl GitUrlPolicy {
    /// `allow_hosts` skip the address checks; `allow_file` accepts `file://` URLs.
    pub fn new(allow_hosts: &[String], allow_file: bool) -> Result<Self, InvalidGitHost> {
        let allow = AllowList::parse(allow_hosts).map_err(|err| InvalidGitHost {
            entry: err.entry,
            reason: err.reason,
        })?;
        Ok(Self { allow, allow_file })
    }

    pub fn from_config(config: &WorkspaceConfig) -> Result<Self, InvalidGitHost> {
        Self::new(&config.allow_git_hosts, config.allow_file_git_urls)
    }

    /// Whether `file://` URLs pass.
    pub fn allows_file_urls(&self) -> bool {
        self.allow_file
    }

    /// Everything decidable without DNS: length, characters, scheme, host, credentials.
    pub fn parse(&self, raw: &str) -> Result<GitUrl, WorkspaceError> {
        let refused = |reason: &str| WorkspaceError::UrlRefused {
            url: shown(raw),
            reason: reason.to_string(),
        };
        if raw.trim().is_empty() {
            return Err(refused("it is empty; give an https URL"));
        }
        if raw.len() > MAX_URL_LEN {
            return Err(refused(&format!(
                "it is longer than {MAX_URL_LEN} characters"
            )));
        }
        if raw.starts_with('-') || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refused(
                "it must not start with `-` or contain spaces or control characters",
            ));
        }
        let Some((_, rest)) = raw.split_once("://") else {
            return Err(refused(if is_scp_like(raw) {
                "ssh (`user@host:path`) is not supported by this server; use the repository's https URL"
            } else {
                "not a URL; use e.g. https://host/owner/repo.git"
            }));
        };
        let url = Url::parse(raw).map_err(|err| refused(&format!("not a valid URL ({err})")))?;
        let transport = match url.scheme() {
            "https" => GitTransport::Https,
            "git" => GitTransport::Git,
            "file" if self.allow_file => {
                return Ok(GitUrl {
                    url,
                    transport: GitTransport::File,
                });
            }
            "ssh" => {
                return Err(refused(
                    "this server cannot clone over ssh; use an https URL",
                ));
            }
            other => {
                return Err(refused(&format!(
                    "the `{other}` scheme is not allowed; use an https:// (or git://) URL"
                )));
            }
        };
        // `https:///x` parses with host `x`; git would read no host at all.
        if rest.starts_with('/') || url.host_str().is_none_or(str::is_empty) {
            return Err(refused(
                "the URL has no host; give e.g. https://github.com/org/repo.git",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused(
                "it carries credentials (a user name or password before `@`), which would be stored with the task \
                 and shown to anyone who can read it; give the URL without them (only public \
                 repositories can be cloned)",
            ));
        }
        Ok(GitUrl { url, transport })
    }

    /// [`Self::parse`], then the host's addresses, resolved without blocking: the API's
    /// check at submission.
    pub async fn check(&self, raw: &str) -> Result<GitUrl, WorkspaceError> {
        let url = self.parse(raw)?;
        if url.transport == GitTransport::File {
            return Ok(url);
        }
        if let Some(addrs) = self.literal_or_refused(&url)? {
            self.check_addresses(&url, addrs)?;
            return Ok(url);
        }
        let found = tokio::net::lookup_host((url.host(), url.port()))
            .await
            .map_err(|err| not_resolved(&url, &err))?
            .collect();
        self.check_addresses(&url, found)?;
        Ok(url)
    }

    /// The addresses the clone may connect to: resolved once (blocking), every one
    /// checked. The clone connects to these and nothing else.
    pub fn resolve_for_clone(&self, url: &GitUrl) -> Result<Vec<SocketAddr>, WorkspaceError> {
        if let Some(addrs) = self.literal_or_refused(url)? {
            return self.check_addresses(url, addrs);
        }
        let found = (url.host(), url.port())
            .to_socket_addrs()
            .map_err(|err| not_resolved(url, &err))?
            .collect();
        self.check_addresses(url, found)
    }

    /// For an IP literal, its one address; refuses a metadata name outright; `None` for
    /// a name that needs DNS.
    fn literal_or_refused(&self, url: &GitUrl) -> Result<Option<Vec<SocketAddr>>, WorkspaceError> {
        let Some(key) = url.host_key() else {
            return Err(refused_host(url, "is missing"));
        };
        match key {
            HostKey::Ip(ip) => Ok(Some(vec![SocketAddr::new(ip, url.port())])),
            HostKey::Name(name) => {
                let allowed = self
                    .allow
                    .allows(&HostKey::Name(name.clone()), Some(url.port()));
                if is_metadata_name(&name) && !allowed {
                    return Err(refused_host(url, "is a cloud metadata service"));
                }
                Ok(None)
            }
        }
    }

    /// Every address must be outside the forbidden ranges (the client may connect to any
    /// of them), unless the operator allow-listed the host.
    fn check_addresses(
        &self,
        url: &GitUrl,
        addrs: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, WorkspaceError> {
        if addrs.is_empty() {
            return Err(WorkspaceError::UrlRefused {
                url: shown(url.as_str()),
                reason: format!("host `{}` has no addresses", url.host()),
            });
        }
        let Some(key) = url.host_key() else {
            return Err(refused_host(url, "is missing"));
        };
        if self.allow.allows(&key, Some(url.port())) {
            return Ok(addrs);
        }
        for addr in &addrs {
            if let Some(range) = classify(addr.ip()) {
                let what = if url.is_name() {
                    format!("resolves to {}, {range}", addr.ip())
                } else {
                    format!("is {range}")
                };
                return Err(refused_host(url, &what));
            }
        }
        Ok(addrs)
    }
}

/// `[user@]host:path`, git's scp-like syntax for ssh.
fn is_scp_like(raw: &str) -> bool {
    raw.split_once(':').is_some_and(|(before, path)| {
        !before.contains('/') && !before.is_empty() && !path.is_empty() && !path.starts_with(':')
    })
}

fn shown(raw: &str) -> String {
    super::display_name(&redact_url(raw))
}

fn refused_host(url: &GitUrl, what: &str) -> WorkspaceError {
    WorkspaceError::UrlRefused {
        url: shown(url.as_str()),
        reason: format!(
            "host `{}` {what}; ask the operator to add it to {ALLOW_SETTING}",
            url.host()
        ),
    }
}

fn not_resolved(url: &GitUrl, err: &std::io::Error) -> WorkspaceError {
    WorkspaceError::UrlRefused {
        url: shown(url.as_str()),
        reason: format!("host `{}` does not resolve: {err}", url.host()),
    }
}

#[cfg(test)]
#[path = "git_url_tests.rs"]
mod tests;
