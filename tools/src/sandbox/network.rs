//! `--network allow=HOST,...`: commands reach the listed hosts through a proxy the run
//! serves, and nothing else.
//!
//! Commands keep bubblewrap's empty network namespace; the one way out is the proxy's Unix
//! socket, whose folder is bound into the sandbox at [`SANDBOX_EGRESS_DIR`] (over an empty
//! `/run`). The sandbox's first program is a relay ([`crate::egress::relay`]), the agent's
//! own binary bound in read-only: it listens on [`SANDBOX_PROXY_LISTEN`], starts the
//! command, and exits with its status. The command's `HTTP_PROXY` and `HTTPS_PROXY` name
//! that port, so `curl`, `pip`, `npm`, `cargo` and `git` go through the proxy, which lets
//! a listed host through and answers anything else `403` with the reason
//! ([`HostAllowList`]). A client that ignores the proxy variables finds no network.
//!
//! A run with no network of its own (a job in the embedded runner's sandbox) sets
//! [`SandboxConfig::upstream_proxy`]: the proxy then passes what it allows on to the
//! runner's proxy, which checks it again. There, where bubblewrap cannot nest (the
//! runner's sandbox mounts `/proc` with covered entries, so a nested sandbox may not
//! mount one of its own), commands run under Landlock with the run's own namespace: its
//! one way out is the runner's proxy (`HTTP_PROXY`, inherited), which keeps the list.
//!
//! Otherwise the allow-list needs a network namespace, so Landlock (which cannot say
//! where a connection goes) and `--sandbox off` refuse it rather than run with more
//! network than asked for.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use super::{NetworkAccess, Sandbox, SandboxConfig, SandboxError, SandboxMode};
use crate::egress::{
    HostAllowList, SANDBOX_EGRESS_DIR, SANDBOX_PROXY_LISTEN, SOCKET, proxy_env, serve,
};

/// Where the relay program is bound inside the sandbox.
const SANDBOX_RELAY_PROGRAM: &str = "/run/agent-egress-relay";

/// The `--network` flag: `off`, `on`, or `allow=HOST,HOST...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkChoice {
    pub access: NetworkAccess,
    /// With `allow=`: the hosts named (they replace the configuration's).
    pub allow_hosts: Vec<String>,
}

impl FromStr for NetworkChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(hosts) = text.trim().strip_prefix("allow=") {
            let allow_hosts: Vec<String> = hosts
                .split(',')
                .map(str::trim)
                .filter(|host| !host.is_empty())
                .map(str::to_string)
                .collect();
            if allow_hosts.is_empty() {
                return Err("`allow=` needs at least one host: allow=HOST,HOST...".to_string());
            }
            return Ok(Self {
                access: NetworkAccess::Allow,
                allow_hosts,
            });
        }
        Ok(Self {
            access: text.parse()?,
            allow_hosts: Vec::new(),
        })
    }
}

/// A run's allow-list, and once its proxy is served, how commands reach it.
#[derive(Debug)]
pub(super) struct Allowed {
    pub(super) hosts: Vec<String>,
    check: Arc<HostAllowList>,
    bridge: OnceLock<Bridge>,
}

/// The proxy's socket folder and the relay program, on the host.
#[derive(Debug)]
struct Bridge {
    socket_dir: PathBuf,
    /// The relay program and the arguments before its own (`--socket`, ...).
    relay: Vec<OsString>,
}

/// The allow-list of a configuration asking for one; refused where it cannot be kept.
pub(super) fn allowed(config: &SandboxConfig) -> Result<Option<Arc<Allowed>>, SandboxError> {
    if config.network != NetworkAccess::Allow {
        return Ok(None);
    }
    if config.mode == SandboxMode::Off {
        return Err(SandboxError::Network(
            "an allow-list of hosts needs the sandbox (bubblewrap); it cannot be kept with \
             `--sandbox off`"
                .to_string(),
        ));
    }
    if config.allow_hosts.is_empty() {
        return Err(SandboxError::Network(
            "`network = \"allow\"` needs hosts: `--network allow=HOST,HOST...` or \
             `allow_hosts` in [tools.sandbox]"
                .to_string(),
        ));
    }
    let check = HostAllowList::new(&config.allow_hosts, &config.host_addresses)
        .map_err(SandboxError::Network)?
        .through(config.upstream_proxy.clone());
    Ok(Some(Arc::new(Allowed {
        hosts: config.allow_hosts.clone(),
        check: Arc::new(check),
        bridge: OnceLock::new(),
    })))
}

/// The run's proxy, served until this is dropped.
#[derive(Debug)]
pub struct EgressProxy {
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sandbox {
    /// Serves the allow-list's proxy for this run's commands (on the current tokio
    /// runtime), with `relay` (a program and its first arguments; see
    /// [`crate::egress::relay::run_command_behind`]) as the program that carries each
    /// command's connections to it. `None` when the run has no allow-list.
    pub fn serve_egress_proxy(&self, relay: Vec<OsString>) -> std::io::Result<Option<EgressProxy>> {
        // Under Landlock (only with an upstream) commands go to the upstream themselves.
        let Some(allow) = self.allow.as_ref().filter(|_| {
            self.network == NetworkAccess::Allow && matches!(self.kind, super::Kind::Bwrap { .. })
        }) else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new().prefix("agent-egress-").tempdir()?;
        let listener = tokio::net::UnixListener::bind(dir.path().join(SOCKET))?;
        let task = serve(listener, allow.check.clone());
        let bridge = Bridge {
            socket_dir: dir.path().to_path_buf(),
            relay,
        };
        if allow.bridge.set(bridge).is_err() {
            task.abort();
            return Err(std::io::Error::other("this run's proxy is already served"));
        }
        Ok(Some(EgressProxy { task, _dir: dir }))
    }

    fn bridge(&self) -> Option<&Bridge> {
        if self.network != NetworkAccess::Allow {
            return None;
        }
        self.allow.as_ref()?.bridge.get()
    }

    /// Bubblewrap's mounts for the proxy: an empty `/run` holding the socket's folder and
    /// the relay program.
    pub(super) fn egress_mounts(&self) -> Vec<OsString> {
        let Some(bridge) = self.bridge() else {
            return Vec::new();
        };
        let Some(program) = bridge.relay.first() else {
            return Vec::new();
        };
        vec![
            "--tmpfs".into(),
            "/run".into(),
            "--bind".into(),
            bridge.socket_dir.clone().into_os_string(),
            SANDBOX_EGRESS_DIR.into(),
            "--ro-bind".into(),
            program.clone(),
            SANDBOX_RELAY_PROGRAM.into(),
        ]
    }

    /// `argv` started behind the relay, when commands reach a proxy.
    pub(super) fn behind_relay(&self, argv: Vec<OsString>) -> Vec<OsString> {
        let Some(bridge) = self.bridge() else {
            return argv;
        };
        let mut full: Vec<OsString> = vec![SANDBOX_RELAY_PROGRAM.into()];
        full.extend(bridge.relay.iter().skip(1).cloned());
        full.extend([
            "--socket".into(),
            Path::new(SANDBOX_EGRESS_DIR).join(SOCKET).into_os_string(),
            "--listen".into(),
            SANDBOX_PROXY_LISTEN.into(),
            "--".into(),
        ]);
        full.extend(argv);
        full
    }

    /// What a command's environment gains: the proxy variables, when it reaches a proxy.
    pub(crate) fn command_env(&self) -> Vec<(OsString, OsString)> {
        if self.bridge().is_none() || !matches!(self.kind, super::Kind::Bwrap { .. }) {
            return Vec::new();
        }
        proxy_env()
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect()
    }
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
