//! The embedded runner's sandbox: each agent sees only its own run.
//!
//! In the embedded service every agent runs on the server's machine, as the server's
//! user. Without a wall it could read the data folder (`tasks.db`, the blob-signing key,
//! every tenant's uploads and outputs, the other runs' folders) and, through `/proc`,
//! the server's environment (which holds its tokens). A prompt is user input, so a user
//! could ask the agent to copy any of that into its diff. So `agent-rs job` runs inside
//! bubblewrap:
//!
//! - a user namespace with no capability over the host, so the mounts below hold;
//! - the whole file system read-only, the data folder (and the runs folder, and the
//!   configured paths, and the home folder's credential stores) replaced by empty ones;
//! - a private `/tmp`, where the job unpacks its workspace and writes its outputs before
//!   uploading them through its signed URLs;
//! - its own PID namespace and `/proc`: the server and the other runs are invisible;
//! - its own network namespace: it reaches the model endpoint and its own signed URLs
//!   (and the hosts of the run's allow-list, `allow_hosts`) only, through the run's
//!   egress proxy ([`super::egress`]), whose socket folder is the
//!   one thing of the run's folder bound in (at `/run/agent-egress`, over an empty `/run`);
//! - the environment the supervisor gives it (already cleared), nothing else.
//!
//! Only the agent is inside: the supervisor stays outside, writing the run's folder
//! (`pid`, `events.jsonl` from the agent's stdout, `exit`), so a restarted server finds
//! and follows the run exactly as before. `--die-with-parent` ties the sandbox to the
//! supervisor, whose group a cancel signals.
//!
//! Nested user namespaces stay allowed: the agent's shell tool puts each command in a
//! sandbox of its own (read-only outside the workspace, no network), and the agent gets
//! the `pids` cgroup folder its commands' process caps are made in. That sandbox is
//! Landlock's: a nested bubblewrap cannot mount a `/proc` of its own below this one,
//! whose entries bubblewrap covers (the kernel refuses a proc mount while no other one
//! is fully visible).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::egress;
use crate::runner::RunnerError;

/// Which sandbox the embedded runner puts agents in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunSandboxMode {
    /// Bubblewrap; a launch fails, saying what to install, when it is not usable. The
    /// default: the API's end-to-end tests run the real agent in it.
    #[default]
    Auto,
    /// The same as `auto`, said explicitly.
    Bwrap,
    /// Agents run with the server's rights and see what it sees: for a machine that is
    /// itself disposable, or runners whose container is the sandbox.
    Off,
}

/// `[sandbox]` of the orchestrator's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSandboxConfig {
    pub mode: RunSandboxMode,
    /// More paths agents must not see, on top of the data folder and the home folder's
    /// credential stores (the server's config file and TLS keys, say).
    pub hidden_paths: Vec<PathBuf>,
    /// Hosts every agent's commands (and its setup) may reach besides what the run needs
    /// (a package registry, say): given to the agent as `AGENT_NETWORK=allow=...` when
    /// the launch names no network of its own, and let through by the run's proxy.
    pub allow_hosts: Vec<String>,
    /// Addresses pinned for allowed names, used by the run's proxy instead of DNS: the
    /// one way to let an allowed name reach a private address (a mirror on this network).
    pub host_addresses: std::collections::BTreeMap<String, std::net::IpAddr>,
}

/// Credential stores under the home folder, hidden from agents.
const HIDDEN_IN_HOME: &[&str] = &[
    ".ssh",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".docker",
    ".kube",
    ".gnupg",
    ".netrc",
    ".git-credentials",
];

/// Where the agent's commands get their `pids` cgroups (see the tools' sandbox).
const PIDS_CGROUP_DIRS: [&str; 2] = [
    "/sys/fs/cgroup/pids/agent-rs-sandbox",
    "/sys/fs/cgroup/agent-rs-sandbox",
];

/// The sandbox decided for the runner: bubblewrap and what it hides, or none.
#[derive(Debug, Clone)]
pub struct RunSandbox {
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Off,
    Bwrap {
        program: PathBuf,
        hidden: Vec<PathBuf>,
    },
    /// Asked for, not usable: every launch fails with this reason.
    Unusable(String),
}

impl RunSandbox {
    pub fn off() -> Self {
        Self { state: State::Off }
    }

    /// Decides the sandbox, checking once that bubblewrap works. `hidden` is what agents
    /// must not see (the data folder first); `home` whose credential stores are hidden;
    /// `search_path` where `bwrap` is looked for.
    pub fn resolve(
        config: &RunSandboxConfig,
        mut hidden: Vec<PathBuf>,
        home: Option<&Path>,
        search_path: Option<&OsStr>,
    ) -> Self {
        if config.mode == RunSandboxMode::Off {
            return Self::off();
        }
        hidden.extend(config.hidden_paths.iter().cloned());
        if let Some(home) = home {
            hidden.extend(HIDDEN_IN_HOME.iter().map(|rel| home.join(rel)));
        }
        let mut hidden: Vec<PathBuf> = hidden
            .iter()
            .filter_map(|path| std::fs::canonicalize(path).ok())
            .collect();
        hidden.sort();
        hidden.dedup();
        let Some(program) = search_path.and_then(find_bwrap) else {
            return Self::unusable("bubblewrap (`bwrap`) is not installed or not on PATH");
        };
        let sandbox = Self {
            state: State::Bwrap { program, hidden },
        };
        match sandbox.probe() {
            Ok(()) => sandbox,
            Err(reason) => Self::unusable(&format!("bubblewrap does not work here: {reason}")),
        }
    }

    fn unusable(reason: &str) -> Self {
        Self {
            state: State::Unusable(format!(
                "no sandbox is usable for agents: {reason}. Install bubblewrap (Debian/Ubuntu: \
                 `apt-get install bubblewrap`) and allow unprivileged user namespaces, or set \
                 `[sandbox] mode = \"off\"` in the orchestrator's configuration to run agents \
                 with the server's own rights (only on a disposable machine)"
            )),
        }
    }

    /// `bwrap` or `off`, for logs.
    pub fn mode(&self) -> &'static str {
        match self.state {
            State::Off => "off",
            State::Bwrap { .. } => "bwrap",
            State::Unusable(_) => "unusable",
        }
    }

    pub fn is_bwrap(&self) -> bool {
        matches!(self.state, State::Bwrap { .. })
    }

    /// What the agent's environment gains in the sandbox: its HTTP clients go through
    /// the egress relay (see [`super::egress`]).
    pub fn agent_env(&self) -> Vec<(String, String)> {
        if !self.is_bwrap() {
            return Vec::new();
        }
        egress::agent_env()
    }

    /// The command line that starts `agent job` inside the sandbox (the agent alone when
    /// the sandbox is off); an error when the sandbox was asked for and is not usable.
    /// `egress_dir` is the run's folder bound in for the egress proxy's socket (none for
    /// the check at start-up).
    pub fn agent_argv(
        &self,
        agent: &Path,
        egress_dir: Option<&Path>,
    ) -> Result<Vec<OsString>, RunnerError> {
        match &self.state {
            State::Off => Ok(vec![agent.as_os_str().to_owned()]),
            State::Unusable(reason) => Err(RunnerError::Launch(reason.clone())),
            State::Bwrap { program, hidden } => {
                if let Some(inside) = hidden.iter().find(|dir| agent.starts_with(dir)) {
                    return Err(RunnerError::Launch(format!(
                        "the agent binary `{}` is inside `{}`, which agents must not see; \
                         install it elsewhere",
                        agent.display(),
                        inside.display()
                    )));
                }
                let mut argv = vec![program.clone().into_os_string()];
                argv.extend(bwrap_args(hidden));
                argv.extend(["--unshare-net".into(), "--tmpfs".into(), "/run".into()]);
                if let Some(dir) = egress_dir {
                    argv.extend([
                        "--bind".into(),
                        dir.as_os_str().to_owned(),
                        egress::SANDBOX_EGRESS_DIR.into(),
                    ]);
                }
                argv.push("--".into());
                argv.push(agent.as_os_str().to_owned());
                Ok(argv)
            }
        }
    }

    fn probe(&self) -> Result<(), String> {
        let argv = self
            .agent_argv(Path::new("true"), None)
            .map_err(|err| err.to_string())?;
        let (program, args) = argv.split_first().ok_or("empty command line")?;
        let output = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|err| format!("cannot run bwrap: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }
}

fn find_bwrap(search_path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(search_path)
        .map(|dir| dir.join("bwrap"))
        .find(|path| {
            std::fs::metadata(path)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Bubblewrap's options for an agent: see the module docs for why each.
fn bwrap_args(hidden: &[PathBuf]) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--unshare-user",
        "--cap-drop",
        "ALL",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    for path in hidden {
        if path.is_dir() {
            args.extend(["--tmpfs".into(), path.clone().into_os_string()]);
        } else {
            args.extend([
                "--ro-bind".into(),
                OsString::from("/dev/null"),
                path.clone().into_os_string(),
            ]);
        }
    }
    for dir in PIDS_CGROUP_DIRS.iter().map(Path::new) {
        if dir
            .parent()
            .is_some_and(|p| p.join("cgroup.procs").exists())
            && std::fs::create_dir_all(dir).is_ok()
        {
            args.extend([
                "--bind".into(),
                dir.as_os_str().to_owned(),
                dir.as_os_str().to_owned(),
            ]);
            break;
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_runs_the_agent_itself() {
        let argv = RunSandbox::off()
            .agent_argv(Path::new("/bin/agent-rs"), None)
            .unwrap();
        assert_eq!(argv, vec![OsString::from("/bin/agent-rs")]);
    }

    #[test]
    fn an_unusable_sandbox_fails_each_launch_saying_what_to_do() {
        let empty = tempfile::tempdir().unwrap();
        let sandbox = RunSandbox::resolve(
            &RunSandboxConfig {
                mode: RunSandboxMode::Auto,
                ..RunSandboxConfig::default()
            },
            Vec::new(),
            None,
            Some(empty.path().as_os_str()),
        );
        assert_eq!(sandbox.mode(), "unusable");
        let err = sandbox
            .agent_argv(Path::new("/bin/agent-rs"), None)
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("apt-get install bubblewrap"), "{message}");
        assert!(message.contains("mode = \"off\""), "{message}");
    }

    #[test]
    fn the_data_folder_is_replaced_by_an_empty_one() {
        let data = tempfile::tempdir().unwrap();
        let args = bwrap_args(&[data.path().to_path_buf()]);
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let data = data.path().display().to_string();
        assert!(
            args.windows(2).any(|w| w[0] == "--tmpfs" && w[1] == data),
            "{args:?}"
        );
        assert!(args.iter().any(|a| a == "--unshare-pid"));
        assert!(
            !args.iter().any(|a| a == "--disable-userns"),
            "nested sandboxes need userns"
        );
    }
}
