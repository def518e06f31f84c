//! One sandbox per run: a small server started in it once, which starts the run's
//! commands inside it.
//!
//! Wrapping every command in its own bubblewrap (a user, PID, network and IPC namespace
//! and a dozen mounts each time), or building its Landlock rules (a walk of `/`, one
//! rule per `/proc` entry, a seccomp program) cost 12 to 20 ms per command. Instead the
//! run starts `agent-rs sandbox-server` ([`run_sandbox_server`]) in the sandbox once,
//! with the same options a command had: under bubblewrap (the whole command line of
//! [`super::bwrap`], behind the relay with an allow-list), or confined by Landlock and
//! seccomp itself before it serves (its children inherit both). Under bubblewrap the
//! server is started when the run's sandbox is decided, as the check that bubblewrap
//! works here ([`Sandbox::resolve_serving`]), and serves the first command; otherwise
//! the first command starts it. Each
//! command is then one request: the agent hands over the command line, its folder and
//! environment, and the write ends of its stdout and stderr pipes (`SCM_RIGHTS`), and
//! keeps capturing, capping and draining the output as it did for its own children.
//!
//! What stays per command, and where:
//! - the process cap: the command joins its own `pids` cgroup (the agent hands over
//!   its `cgroup.procs`, the command writes itself in before it runs);
//! - the cleanup at its end: the cgroup's members are killed by the agent (every
//!   process of the command, whatever group or session it moved to, and only those:
//!   commands run concurrently); without a cgroup, the server kills the command's group
//!   and the processes carrying its mark, in the sandbox's own `/proc` (Landlock mode:
//!   the agent does, as the PIDs are its own);
//! - `.git`'s hooks and config: bound read-only when the server starts; a `.git`
//!   appearing or changing shape later (`git init`, a new submodule) makes the next
//!   command start a new server that binds it, while commands of the old one finish;
//!   under Landlock the agent still restores them after each command. Likewise under
//!   Landlock, whose rules name what is readable in a folder holding a hidden path
//!   entry by entry, a new entry there (a file made in the home folder) starts a new
//!   server whose rules include it.
//!
//! What a run shares now: the private `/tmp` (one per run, not per command), and under
//! bubblewrap one PID namespace, where a command sees the other commands running at the
//! same moment (all the run's own).
//!
//! A server that dies (killed by a command, crashed) takes its commands along, which
//! fail saying so; the next command starts a new server, and a command whose request
//! found it gone is retried once on the new one. The server dies with the agent
//! (bubblewrap's `--die-with-parent`, its own parent-death signal, and end of stream on
//! its socket). Runs with no sandbox server program (a library caller or a test without
//! `agent-rs`) keep starting one sandbox per command, as before.

mod client;
mod launch;
mod protocol;
mod serve;
mod spawn;
mod usage;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::client::ReadyServer;
pub(crate) use self::client::{CommandServer, ServedCommand, SpawnError};
use self::launch::SpawnedServer;
use self::serve::ServeArgs;
pub use self::serve::run_sandbox_server;
pub use self::usage::{ServerCpu, sandbox_server_cpu, wait_for_sandbox_servers};
use super::{Kind, NetworkAccess, Sandbox};

/// The server of a run's sandbox (shared by the clones of its [`Sandbox`]), started
/// when the first command needs it.
#[derive(Debug)]
pub(crate) struct ServerSlot {
    /// The program and first arguments that serve (`agent-rs sandbox-server`).
    program: Vec<OsString>,
    current: tokio::sync::Mutex<Option<Current>>,
    /// Under Landlock, the run's private temporary folder (`TMPDIR`), the same for
    /// every server the run starts.
    tmp: std::sync::OnceLock<Arc<tempfile::TempDir>>,
    /// A server started while the sandbox was decided, ready for the first command
    /// whose key it matches ([`Sandbox::resolve_serving`]).
    spare: std::sync::Mutex<Option<(Key, ReadyServer)>>,
}

#[derive(Debug)]
struct Current {
    server: Arc<CommandServer>,
    /// What the server was started for: a different one needs a new server.
    key: Key,
    /// The private temporary folder of its commands under Landlock (`TMPDIR`).
    tmp: Option<Arc<tempfile::TempDir>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Key {
    workspace: PathBuf,
    /// Bubblewrap: the parts of `.git` bound read-only.
    git_read_only: Vec<PathBuf>,
    /// Landlock: what its rules let commands read (a new entry in a folder allowed
    /// child by child needs new rules).
    readable: Vec<PathBuf>,
}

/// A server ready for a command, and what the command needs from it.
#[derive(Debug, Clone)]
pub(crate) struct ServerLease {
    pub server: Arc<CommandServer>,
    /// `TMPDIR` for the command, under Landlock.
    pub tmp: Option<Arc<tempfile::TempDir>>,
}

impl ServerSlot {
    pub(crate) fn new(program: Vec<OsString>) -> Self {
        Self {
            program,
            current: tokio::sync::Mutex::new(None),
            tmp: std::sync::OnceLock::new(),
            spare: std::sync::Mutex::new(None),
        }
    }

    /// A fresh slot serving with the same program (a sandbox with other settings).
    pub(crate) fn fresh(&self) -> Self {
        Self::new(self.program.clone())
    }
}

impl Sandbox {
    /// The same sandbox, its commands started by a server run once per run with
    /// `program` (the agent's own binary and `sandbox-server`); see [`self`]. No
    /// sandbox stays without one: its commands run directly.
    pub fn with_server_program(mut self, program: Vec<OsString>) -> Self {
        if !self.is_off() && !program.is_empty() {
            self.server = Some(Arc::new(ServerSlot::new(program)));
        }
        self
    }

    /// The run's server for a command in `workspace`, started (or started again) when
    /// needed; `None` when commands are started directly.
    pub(crate) async fn command_server(
        &self,
        workspace: &Path,
    ) -> Option<std::io::Result<ServerLease>> {
        let slot = self.server.as_ref()?;
        let key = self.server_key(workspace);
        let mut current = slot.current.lock().await;
        if let Some(running) = current.as_ref()
            && running.key == key
            && running.server.is_alive()
        {
            return Some(Ok(ServerLease {
                server: Arc::clone(&running.server),
                tmp: running.tmp.clone(),
            }));
        }
        // One that does not fit (the workspace changed shape since) ends when dropped.
        let spare = slot
            .spare
            .lock()
            .ok()
            .and_then(|mut spare| spare.take())
            .filter(|(spare_key, _)| *spare_key == key);
        let started = match spare {
            Some((key, ready)) => ready.serve().map(|server| Current {
                server,
                key,
                tmp: None,
            }),
            None => self.start_server(slot, key).await,
        };
        Some(started.map(|started| {
            let lease = ServerLease {
                server: Arc::clone(&started.server),
                tmp: started.tmp.clone(),
            };
            // A server replaced here serves its running commands to their end.
            *current = Some(started);
            lease
        }))
    }

    /// Whether a server started with the sandbox still waits for its first command
    /// (tests).
    #[doc(hidden)]
    pub fn has_spare_server(&self) -> bool {
        self.server
            .as_ref()
            .is_some_and(|slot| slot.spare.lock().is_ok_and(|spare| spare.is_some()))
    }

    /// Kills the current server, as a command could, and waits until the agent has
    /// noticed (tests); false when there was none.
    #[doc(hidden)]
    pub async fn kill_command_server(&self) -> bool {
        let Some(slot) = self.server.as_ref() else {
            return false;
        };
        let Some(server) = slot
            .current
            .lock()
            .await
            .as_ref()
            .map(|running| Arc::clone(&running.server))
        else {
            return false;
        };
        server.kill();
        for _ in 0..500 {
            if !server.is_alive() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }

    /// What a server for commands in `workspace` is started for.
    fn server_key(&self, workspace: &Path) -> Key {
        Key {
            workspace: workspace.to_path_buf(),
            git_read_only: match self.kind {
                Kind::Bwrap { .. } => super::bwrap::git_read_only(workspace, self.git),
                _ => Vec::new(),
            },
            readable: match &self.kind {
                Kind::Landlock(plan) => super::landlock::readable_outside_proc(&plan.hidden),
                _ => Vec::new(),
            },
        }
    }

    /// Under bubblewrap, starts the server for `workspace` now and keeps it for the
    /// first command: the run's sandbox is checked by the server it needs anyway, not by
    /// a sandbox of its own (a second bubblewrap, a namespace set made and torn down, a
    /// few milliseconds of CPU a run). The error is why the sandbox does not work here.
    pub(crate) fn start_spare_server(&self, workspace: &Path) -> Result<(), String> {
        let Some(slot) = self.server.as_ref() else {
            return Err("no sandbox server program".to_string());
        };
        let key = self.server_key(workspace);
        let (argv, _) = self
            .server_argv(slot, &key)
            .map_err(|err| err.to_string())?;
        let spawned = SpawnedServer::spawn(argv).map_err(|err| err.to_string())?;
        let ready = spawned.wait_ready_blocking()?;
        if let Ok(mut spare) = slot.spare.lock() {
            *spare = Some((key, ready));
        }
        Ok(())
    }

    async fn start_server(&self, slot: &ServerSlot, key: Key) -> std::io::Result<Current> {
        let started = std::time::Instant::now();
        let (argv, tmp) = self.server_argv(slot, &key)?;
        let server = CommandServer::start(argv).await.map_err(|err| {
            std::io::Error::other(format!("cannot start the run's sandbox: {err}"))
        })?;
        tracing::debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "sandbox server started"
        );
        Ok(Current { server, key, tmp })
    }

    /// The command line that starts a server for `key`, and under Landlock its
    /// commands' temporary folder.
    fn server_argv(
        &self,
        slot: &ServerSlot,
        key: &Key,
    ) -> std::io::Result<(Vec<OsString>, Option<Arc<tempfile::TempDir>>)> {
        let program = &slot.program;
        let (exe, first_args) = program
            .split_first()
            .ok_or_else(|| std::io::Error::other("no sandbox server program"))?;
        match &self.kind {
            Kind::Bwrap { program: bwrap, .. } => {
                let mut argv = vec![bwrap.clone().into_os_string()];
                argv.extend(super::bwrap::args(
                    self,
                    Some((&key.workspace, &key.workspace)),
                    false,
                ));
                // The server's program shows through wherever it lies (under `/tmp`).
                argv.extend(["--ro-bind".into(), exe.clone(), exe.clone()]);
                argv.push("--".into());
                let mut server: Vec<OsString> = program.to_vec();
                server.extend(ServeArgs::default().to_args());
                argv.extend(self.behind_relay(server));
                Ok((argv, None))
            }
            Kind::Landlock(plan) => {
                let tmp = match slot.tmp.get() {
                    Some(tmp) => Arc::clone(tmp),
                    None => {
                        let made = tempfile::Builder::new().prefix("agent-rs-cmd-").tempdir()?;
                        Arc::clone(slot.tmp.get_or_init(|| Arc::new(made)))
                    }
                };
                let args = ServeArgs {
                    landlock: true,
                    network_on: super::landlock_network(self.network) == NetworkAccess::On,
                    writable: vec![key.workspace.clone(), tmp.path().to_path_buf()],
                    hidden: plan.hidden.to_vec(),
                };
                let mut argv = vec![exe.clone()];
                argv.extend(first_args.iter().cloned());
                argv.extend(args.to_args());
                Ok((argv, Some(tmp)))
            }
            Kind::Off => Err(std::io::Error::other("no sandbox to serve commands in")),
        }
    }
}
