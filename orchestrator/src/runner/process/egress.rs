//! The sandboxed agent's one way out: an HTTP proxy that lets through the model endpoint
//! and the run's own signed URLs, and nothing else.
//!
//! A sandboxed agent has its own network namespace, where only a loopback exists. The
//! runner binds one folder of the run into it (`egress/`), where this proxy listens on a
//! Unix socket; the agent relays a local TCP port to that socket and points its HTTP
//! clients at it (`HTTP_PROXY`). Every request is checked against the run's
//! [`EgressPolicy`], built at launch from the launch spec:
//!
//! - the model endpoint (`OPENAI_BASE_URL`): any path under its own, and `CONNECT` to its
//!   host and port when it is `https` (the path is then inside TLS);
//! - the signed URLs (`AGENT_WORKSPACE_URL`, each of `AGENT_UPLOAD_URLS`): exactly their
//!   paths, over plain HTTP (the embedded service's blob routes); an `https` one is
//!   allowed by `CONNECT` to its host and port.
//!
//! - the hosts of the run's allow-list (`AGENT_NETWORK=allow=HOST,...`, which the agent's
//!   commands and its setup reach through the agent's own proxy, chained to this one):
//!   any path, by `CONNECT` or plain HTTP, to an address that is neither loopback nor
//!   private nor metadata unless the server pins it (`[orchestrator.sandbox]
//!   host_addresses`). A `host:port` the rules above name is decided by them alone, so
//!   an allow-list can never open the rest of the service's own routes.
//!
//! The proxy itself is the shell sandbox's ([`tools::egress`]): a request the policy
//! refuses gets `403` with the reason, so the agent's error says what happened (a
//! metadata address, another host) instead of timing out.
//!
//! The policy is saved in the run's folder (URLs without their query strings: no
//! signature is written), so a restarted server serves the proxy of a run it re-attaches.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tools::egress::{EgressCheck, HostAllowList};
pub use tools::egress::{SANDBOX_EGRESS_DIR, SANDBOX_PROXY_LISTEN, SOCKET};
use url::Url;

use crate::runner::LaunchSpec;

/// The folder of the run bound into the sandbox, and the socket's name in it.
pub const EGRESS_DIR: &str = "egress";
/// The policy's file in the run's folder.
pub const POLICY_FILE: &str = "egress.json";

/// What the agent's environment gains to go out through the proxy: its HTTP clients
/// point at the relay it serves on [`SANDBOX_PROXY_LISTEN`], which forwards to the
/// socket in [`SANDBOX_EGRESS_DIR`].
pub fn agent_env() -> Vec<(String, String)> {
    let mut env = tools::egress::proxy_env();
    env.push((
        "AGENT_EGRESS_SOCKET".into(),
        format!("{SANDBOX_EGRESS_DIR}/{SOCKET}"),
    ));
    env.push(("AGENT_EGRESS_LISTEN".into(), SANDBOX_PROXY_LISTEN.into()));
    env
}

/// What a run may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressPolicy {
    pub rules: Vec<EgressRule>,
    /// The run's allow-list (`AGENT_NETWORK=allow=...`): hosts its commands may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_hosts: Vec<String>,
    /// Addresses the server pins for allowed names (the one way to a private address).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_addresses: BTreeMap<String, IpAddr>,
}

/// One destination: `host:port`, and which paths (all under `path_prefix`, exactly
/// `path`, or any through `CONNECT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRule {
    pub host: String,
    pub port: u16,
    pub paths: AllowedPaths,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedPaths {
    /// A tunnel (`CONNECT`): for `https`, whose paths the proxy cannot see.
    Tunnel,
    Prefix(String),
    Exact(String),
}

impl EgressPolicy {
    /// The policy of a launch: its model endpoint and signed URLs.
    pub fn from_spec(spec: &LaunchSpec) -> Self {
        use secrecy::ExposeSecret;
        let mut policy = Self::default();
        let model = spec
            .env
            .get("OPENAI_BASE_URL")
            .cloned()
            .unwrap_or_else(|| "https://api.openai.com/v1".to_string());
        if let Ok(url) = Url::parse(&model) {
            let prefix = url.path().trim_end_matches('/').to_string();
            policy.allow(&url, AllowedPaths::Prefix(prefix));
        }
        // A follow-up also reads the previous run's diff and trajectory.
        for name in [
            "AGENT_WORKSPACE_URL",
            "AGENT_RESUME_DIFF_URL",
            "AGENT_RESUME_TRAJECTORY_URL",
        ] {
            if let Some(url) = spec.secret_env.get(name)
                && let Ok(url) = Url::parse(url.expose_secret())
            {
                policy.allow(&url, AllowedPaths::Exact(url.path().to_string()));
            }
        }
        if let Some(uploads) = spec.secret_env.get("AGENT_UPLOAD_URLS")
            && let Ok(uploads) = serde_json::from_str::<std::collections::BTreeMap<String, String>>(
                uploads.expose_secret(),
            )
        {
            for url in uploads.values().filter_map(|url| Url::parse(url).ok()) {
                policy.allow(&url, AllowedPaths::Exact(url.path().to_string()));
            }
        }
        if let Some(network) = spec.env.get("AGENT_NETWORK")
            && let Ok(choice) = network.parse::<tools::NetworkChoice>()
            && choice.access == tools::NetworkAccess::Allow
        {
            policy.allow_hosts = choice.allow_hosts;
        }
        policy
    }

    /// The same policy, with the addresses the server pins for allowed names.
    pub fn with_host_addresses(mut self, pinned: &BTreeMap<String, IpAddr>) -> Self {
        self.host_addresses = pinned.clone();
        self
    }

    /// Whether a rule names `host:port`: then the rules alone decide.
    fn names(&self, host: &str, port: u16) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.rules
            .iter()
            .any(|rule| rule.host == host && rule.port == port)
    }

    /// The allow-list as a check, when the run has one (and it parses; it did at launch).
    fn allow_list(&self) -> Option<HostAllowList> {
        if self.allow_hosts.is_empty() {
            return None;
        }
        HostAllowList::new(&self.allow_hosts, &self.host_addresses).ok()
    }

    /// Whether the allow-list lets `host:port` through (`host:port` named by no rule).
    fn allow_list_allows(&self, host: &str, port: u16) -> bool {
        !self.names(host, port)
            && self
                .allow_list()
                .is_some_and(|list| list.refuse_tunnel(host, port).is_none())
    }

    /// What the run may reach, for a refusal.
    fn reachable(&self) -> String {
        if self.allow_hosts.is_empty() {
            return "its model endpoint and its own signed URLs".to_string();
        }
        format!(
            "its model endpoint, its own signed URLs and the hosts it allows ({})",
            self.allow_hosts.join(", ")
        )
    }

    fn allow(&mut self, url: &Url, paths: AllowedPaths) {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return;
        };
        let paths = if url.scheme() == "https" {
            AllowedPaths::Tunnel
        } else {
            paths
        };
        let rule = EgressRule {
            host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            port,
            paths,
        };
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
    }

    /// Why a `CONNECT host:port` is refused; `None` when it is allowed.
    pub fn refuse_tunnel(&self, host: &str, port: u16) -> Option<String> {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let allowed = self.rules.iter().any(|rule| {
            rule.host == host && rule.port == port && rule.paths == AllowedPaths::Tunnel
        }) || self.allow_list_allows(&host, port);
        (!allowed).then(|| {
            format!(
                "the sandbox lets this run reach only {}; {host}:{port} is none of them",
                self.reachable()
            )
        })
    }

    /// Why a plain-HTTP request to `url` is refused; `None` when it is allowed.
    pub fn refuse_request(&self, url: &Url) -> Option<String> {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Some("the request names no host".to_string());
        };
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let path = url.path();
        let allowed = self.rules.iter().any(|rule| {
            rule.host == host
                && rule.port == port
                && match &rule.paths {
                    AllowedPaths::Tunnel => false,
                    AllowedPaths::Exact(exact) => path == exact,
                    AllowedPaths::Prefix(prefix) => {
                        path == prefix
                            || path
                                .strip_prefix(prefix.as_str())
                                .is_some_and(|rest| rest.starts_with('/'))
                    }
                }
        }) || self.allow_list_allows(&host, port);
        (!allowed).then(|| {
            format!(
                "the sandbox lets this run reach only {}; http://{host}:{port}{path} is none \
                 of them",
                self.reachable()
            )
        })
    }

    pub fn save(&self, run_dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = run_dir.join("egress.json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, run_dir.join(POLICY_FILE))
    }

    pub fn load(run_dir: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(run_dir.join(POLICY_FILE)).ok()?).ok()
    }
}

#[async_trait::async_trait]
impl EgressCheck for EgressPolicy {
    fn refuse_tunnel(&self, host: &str, port: u16) -> Option<String> {
        EgressPolicy::refuse_tunnel(self, host, port)
    }

    fn refuse_request(&self, url: &Url) -> Option<String> {
        EgressPolicy::refuse_request(self, url)
    }

    /// The service's own destinations as the resolver says (they are often loopback);
    /// an allow-list's through its checks (no private address unless pinned).
    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        match self.allow_list().filter(|_| !self.names(host, port)) {
            Some(list) => list.addresses(host, port).await,
            None => tokio::net::lookup_host((host, port))
                .await
                .map(Iterator::collect)
                .map_err(|err| format!("cannot resolve {host}: {err}")),
        }
    }
}

/// How often the proxy checks whether its run is over.
const RUN_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Serves the proxy on `run_dir/egress/proxy.sock` until `stop`, or until the run is over
/// (its `exit` record written, or its folder gone). A socket left by a previous server is
/// replaced.
pub fn spawn(
    run_dir: PathBuf,
    policy: EgressPolicy,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let dir = run_dir.join(EGRESS_DIR);
    std::fs::create_dir_all(&dir)?;
    match std::fs::remove_file(dir.join(SOCKET)) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let (_dir_handle, socket) = short_socket_path(&dir)?;
    let listener = UnixListener::bind(&socket)?;
    let policy = std::sync::Arc::new(policy);
    tokio::spawn(async move {
        let mut check = tokio::time::interval(RUN_CHECK_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = check.tick() => {
                    if !run_dir.is_dir() || run_dir.join(super::run_dir::EXIT).exists() {
                        break;
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let policy = policy.clone();
                        tokio::spawn(async move {
                            if let Err(err) = tools::egress::serve_connection(stream, policy.as_ref()).await {
                                tracing::debug!(error = %err, "egress connection ended");
                            }
                        });
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "egress proxy stopped accepting");
                        break;
                    }
                },
            }
        }
    });
    Ok(())
}

/// Serves the proxy of a run launched before (by this server or one before it) unless
/// one already answers on its socket.
pub async fn ensure(run_dir: &Path, stop: CancellationToken) {
    let Some(policy) = EgressPolicy::load(run_dir) else {
        return;
    };
    let dir = run_dir.join(EGRESS_DIR);
    if let Ok((_dir_handle, socket)) = short_socket_path(&dir)
        && UnixStream::connect(&socket).await.is_ok()
    {
        return;
    }
    if let Err(err) = spawn(run_dir.to_path_buf(), policy, stop) {
        tracing::warn!(error = %err, run = %run_dir.display(), "cannot serve a run's egress proxy");
    }
}

/// A socket path in `dir` short enough for `bind` (at most 107 bytes, which a data
/// folder's path plus a run's name can exceed): the folder opened, and named through
/// `/proc/self/fd`. The handle must live until the socket is bound or connected.
fn short_socket_path(dir: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", handle.as_raw_fd()));
    Ok((handle, path))
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
