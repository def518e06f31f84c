//! The shell tool's sandbox: what a command the model writes may touch.
//!
//! The workspace jail fences the file tools, but `run_shell_command` runs whatever the
//! model writes, and a prompt is user input. So every command runs in a sandbox unless
//! the run was explicitly told otherwise:
//!
//! - the whole file system is read-only except the workspace and a private `/tmp`; in
//!   the workspace's `.git`, the hooks and the config (what git runs later, outside the
//!   sandbox) stay read-only, those of its submodules' git directories
//!   (`.git/modules/*`) too, or the whole folder ([`GitProtection`]);
//! - credential folders of the home directory (`~/.ssh`, `~/.aws`...) are hidden;
//! - the command gets its own PID namespace (no other process is visible, so no other
//!   process's environment can be read through `/proc`) and a fresh `/proc`;
//! - no network unless the run allows it: all of it (`on`), or the hosts of an
//!   allow-list (`allow`), reached through a proxy the run serves ([`network`]);
//! - at most [`SandboxConfig::max_processes`] processes (a fork bomb hits the cap, not the
//!   machine), where a `pids` cgroup can be made.
//!
//! The mechanism is bubblewrap ([`bwrap`]), in an unprivileged user namespace with every
//! capability dropped. A run sets its sandbox up once and starts its commands inside it,
//! through a small server running there ([`server`]); the PID namespace and the private
//! `/tmp` are the run's, the process cap and the cleanup stay per command. Where user namespaces are off, Landlock plus seccomp
//! ([`landlock`]) give the same file and network fences without a PID namespace. Where
//! neither is usable, [`Sandbox::resolve`] refuses, saying why and what to install,
//! unless the run asked for [`SandboxMode::Off`]: running unsandboxed is a decision
//! someone makes, never a silent fallback.
//!
//! [`SandboxSummary`] says which mode is in force; the agent writes it to `result.json`
//! and the trajectory.

mod bwrap;
mod config;
mod git_dirs;
mod hints;
mod landlock;
mod network;
mod pids;
mod server;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::config::hidden_paths;
pub use self::config::{
    GitProtection, NetworkAccess, SandboxConfig, SandboxError, SandboxMode, SandboxSummary,
};
pub(crate) use self::hints::blocked_action_notes;
pub(crate) use self::landlock::{Confinement, GitGuard, confine_before_exec};
pub use self::network::{EgressProxy, NetworkChoice};
pub(crate) use self::pids::PidsCgroup;
use self::pids::PidsPool;
use self::server::ServerSlot;
pub(crate) use self::server::{ServedCommand, ServerLease, SpawnError};
pub use self::server::{
    ServerCpu, run_sandbox_server, sandbox_server_cpu, wait_for_sandbox_servers,
};

/// The sandbox decided for a run: how every command is wrapped.
#[derive(Debug, Clone)]
pub struct Sandbox {
    kind: Kind,
    network: NetworkAccess,
    git: GitProtection,
    hidden: Vec<PathBuf>,
    /// The commands' `pids` cgroups, with their cap (shared by the clones of a run's
    /// sandbox); `None` when no cgroup can be made here (the PID namespace and the kill
    /// at the end still apply).
    pids: Option<Arc<PidsPool>>,
    /// With [`NetworkAccess::Allow`]: the hosts, and once the run serves its proxy, the
    /// way commands reach it.
    allow: Option<Arc<network::Allowed>>,
    /// The run's sandbox server, when commands are started by one ([`server`]).
    server: Option<Arc<ServerSlot>>,
}

#[derive(Debug, Clone)]
enum Kind {
    Off,
    Bwrap {
        program: PathBuf,
        /// This bubblewrap can forbid nested user namespaces (0.8 and later).
        disable_userns: bool,
    },
    Landlock(landlock::Plan),
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::off()
    }
}

impl Sandbox {
    /// No sandbox: commands run as the agent does. For tests and for runs that asked
    /// for `--sandbox off`.
    pub fn off() -> Self {
        Self {
            kind: Kind::Off,
            network: NetworkAccess::On,
            git: GitProtection::HooksAndConfig,
            hidden: Vec::new(),
            pids: None,
            allow: None,
            server: None,
        }
    }

    /// Decides the sandbox for a run, checking that it works (one sandboxed `true`).
    /// `home` is the user's home folder (whose credential stores are hidden) and
    /// `search_path` the `PATH` bubblewrap is looked up on; both are passed in because
    /// this crate does not read the environment.
    pub fn resolve(
        config: &SandboxConfig,
        home: Option<&Path>,
        search_path: Option<&OsStr>,
    ) -> Result<Self, SandboxError> {
        Self::resolve_checked(config, home, search_path, &mut |sandbox| {
            let Kind::Bwrap { program, .. } = &sandbox.kind else {
                return Err("not bubblewrap".to_string());
            };
            bwrap::probe(program, sandbox)
        })
    }

    /// [`Self::resolve`] for a run whose commands a server started by `server_program`
    /// runs ([`Self::with_server_program`]) in `workspace`: under bubblewrap, the check
    /// that the sandbox works is that server's start, and the server is kept for the
    /// first command. With an allow-list the server waits for the run's egress proxy,
    /// so there the check stays a sandboxed `true`.
    pub fn resolve_serving(
        config: &SandboxConfig,
        home: Option<&Path>,
        search_path: Option<&OsStr>,
        server_program: Vec<OsString>,
        workspace: &Path,
    ) -> Result<Self, SandboxError> {
        if config.network == NetworkAccess::Allow || server_program.is_empty() {
            return Self::resolve(config, home, search_path)
                .map(|sandbox| sandbox.with_server_program(server_program));
        }
        let mut serving: Option<Arc<server::ServerSlot>> = None;
        let sandbox = Self::resolve_checked(config, home, search_path, &mut |sandbox| {
            let sandbox = sandbox.clone().with_server_program(server_program.clone());
            sandbox.start_spare_server(workspace)?;
            serving = sandbox.server;
            Ok(())
        })?;
        // A slot only when bubblewrap passed (its check is the one that fills it).
        Ok(match serving {
            Some(slot) => Self {
                server: Some(slot),
                ..sandbox
            },
            None => sandbox.with_server_program(server_program),
        })
    }

    /// Decides the sandbox; `check_bwrap` says whether a bubblewrap sandbox works here
    /// (the error is why not).
    fn resolve_checked(
        config: &SandboxConfig,
        home: Option<&Path>,
        search_path: Option<&OsStr>,
        check_bwrap: &mut dyn FnMut(&Sandbox) -> Result<(), String>,
    ) -> Result<Self, SandboxError> {
        let allow = network::allowed(config)?;
        let hidden = hidden_paths(config, home);
        let pids = (config.max_processes > 0 && config.mode != SandboxMode::Off)
            .then(|| pids::usable_pool(config.max_processes))
            .flatten();
        let with_kind = |kind| Self {
            kind,
            network: config.network,
            git: config.git,
            hidden: hidden.clone(),
            pids: pids.clone(),
            allow: allow.clone(),
            server: None,
        };
        let kind = match config.mode {
            SandboxMode::Off => return Ok(Self::off()),
            SandboxMode::Bwrap => bwrap_kind(search_path, &with_kind, check_bwrap),
            SandboxMode::Landlock => landlock_kind(config, &hidden),
            SandboxMode::Auto => bwrap_kind(search_path, &with_kind, check_bwrap).or_else(|bwrap_reason| {
                let kind = landlock_kind(config, &hidden)
                    .map_err(|landlock_reason| format!("{bwrap_reason}; {landlock_reason}"))?;
                tracing::info!(reason = %bwrap_reason, "bubblewrap is not usable; commands run under Landlock and seccomp");
                Ok(kind)
            }),
        };
        kind.map(with_kind)
            .map_err(|reason| SandboxError::Unavailable { reason })
    }

    /// The same sandbox with the network `network` (a setup phase has it, the agent
    /// phase after it may not). No sandbox stays no sandbox.
    pub fn with_network(&self, network: NetworkAccess) -> Self {
        let mut sandbox = self.clone();
        if !sandbox.is_off() && sandbox.network != network {
            sandbox.network = network;
            // Another network is another sandbox: its own server.
            sandbox.server = self.server.as_ref().map(|slot| Arc::new(slot.fresh()));
        }
        sandbox
    }

    pub fn is_off(&self) -> bool {
        matches!(self.kind, Kind::Off)
    }

    pub fn network(&self) -> NetworkAccess {
        self.network
    }

    pub fn summary(&self) -> SandboxSummary {
        match self.kind {
            Kind::Off => SandboxSummary {
                mode: "off".to_string(),
                network: NetworkAccess::On,
                allowed_hosts: Vec::new(),
                max_processes: None,
            },
            Kind::Bwrap { .. } | Kind::Landlock(_) => SandboxSummary {
                mode: if matches!(self.kind, Kind::Bwrap { .. }) {
                    "bwrap"
                } else {
                    "landlock"
                }
                .to_string(),
                network: self.network,
                allowed_hosts: match (&self.allow, self.network) {
                    (Some(allow), NetworkAccess::Allow) => allow.hosts.clone(),
                    _ => Vec::new(),
                },
                max_processes: self.pids.as_ref().map(|pool| pool.max()),
            },
        }
    }

    /// The program and arguments that run `argv` in the sandbox, with `workspace` the
    /// only writable folder; `argv` itself when the sandbox is off. `blocked_on_stdin`:
    /// the sandboxed program waits for one byte on stdin before it starts (so it can be
    /// put in a cgroup first), and then finds stdin at end of file.
    pub(crate) fn wrap(
        &self,
        workspace: &Path,
        working_dir: &Path,
        argv: Vec<OsString>,
        blocked_on_stdin: bool,
    ) -> Vec<OsString> {
        match &self.kind {
            Kind::Off | Kind::Landlock(_) => argv,
            Kind::Bwrap { program, .. } => {
                let mut full = vec![program.clone().into_os_string()];
                full.extend(bwrap::args(
                    self,
                    Some((workspace, working_dir)),
                    blocked_on_stdin,
                ));
                full.push("--".into());
                full.extend(self.behind_relay(argv));
                full
            }
        }
    }

    /// Whether commands run in a PID namespace of their own (bubblewrap): every process
    /// a command starts, in its group or not, dies with the namespace.
    pub(crate) fn has_own_pid_namespace(&self) -> bool {
        matches!(self.kind, Kind::Bwrap { .. })
    }

    /// Whether commands are confined in their own process (Landlock and seccomp, applied
    /// between fork and exec) rather than by a wrapper program.
    pub(crate) fn confines_in_process(&self) -> bool {
        matches!(self.kind, Kind::Landlock(_))
    }

    /// The Landlock and seccomp rules for one command that may write `writable`; `None`
    /// for the other mechanisms.
    pub(crate) fn confinement(&self, writable: &[&Path]) -> Option<std::io::Result<Confinement>> {
        match &self.kind {
            Kind::Landlock(plan) => {
                let plan = landlock::Plan {
                    hidden: plan.hidden.clone(),
                    network: landlock_network(self.network),
                };
                Some(Confinement::new(&plan, writable))
            }
            _ => None,
        }
    }

    /// An empty `pids` cgroup for one command, when the sandbox caps processes.
    pub(crate) fn pids_cgroup(&self) -> Option<PidsCgroup> {
        let pool = self.pids.as_ref()?;
        if self.is_off() {
            return None;
        }
        match pool.take() {
            Ok(cgroup) => Some(cgroup),
            Err(err) => {
                tracing::warn!(error = %err, "cannot make a pids cgroup; the command runs without a process cap");
                None
            }
        }
    }

    fn disable_userns(&self) -> bool {
        matches!(
            self.kind,
            Kind::Bwrap {
                disable_userns: true,
                ..
            }
        )
    }
}

/// Bubblewrap, found and working; the error is why not.
fn bwrap_kind(
    search_path: Option<&OsStr>,
    with_kind: &dyn Fn(Kind) -> Sandbox,
    check: &mut dyn FnMut(&Sandbox) -> Result<(), String>,
) -> Result<Kind, String> {
    let program = bwrap::find(search_path)
        .ok_or_else(|| "bubblewrap (`bwrap`) is not installed or not on PATH".to_string())?;
    let disable_userns = bwrap::supports_disable_userns(&program);
    let kind = Kind::Bwrap {
        program: program.clone(),
        disable_userns,
    };
    check(&with_kind(kind.clone()))
        .map_err(|reason| format!("bubblewrap does not work here: {reason}"))?;
    Ok(kind)
}

/// Landlock and seccomp, working; the error is why not.
fn landlock_kind(config: &SandboxConfig, hidden: &[PathBuf]) -> Result<Kind, String> {
    if config.git == GitProtection::ReadOnly {
        return Err(
            "Landlock cannot keep the whole .git folder read-only below a writable \
                    workspace (`git = \"read_only\"` needs bubblewrap)"
                .to_string(),
        );
    }
    if config.network == NetworkAccess::Allow && config.upstream_proxy.is_none() {
        return Err(
            "Landlock cannot limit where a connection goes (an allow-list of hosts \
             needs bubblewrap's network namespace)"
                .to_string(),
        );
    }
    let plan = landlock::Plan {
        hidden: std::sync::Arc::new(hidden.to_vec()),
        network: landlock_network(config.network),
    };
    landlock::probe(&plan).map_err(|reason| format!("Landlock does not work here: {reason}"))?;
    Ok(Kind::Landlock(plan))
}

/// What seccomp lets commands open under Landlock. An allow-list reaches Landlock only in
/// a run whose own network namespace has no way out but a proxy that keeps the list (a
/// job behind its runner's egress proxy, see [`SandboxConfig::upstream_proxy`]): there
/// commands may open sockets, and the namespace and that proxy are the fence.
fn landlock_network(network: NetworkAccess) -> NetworkAccess {
    match network {
        NetworkAccess::Allow => NetworkAccess::On,
        other => other,
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
