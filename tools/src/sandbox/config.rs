//! What a run asks of the shell tool's sandbox (`[tools.sandbox]`, the command line's
//! flags), what it reports having, and why it could not have one.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which sandbox a run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Bubblewrap when usable, else Landlock plus seccomp; otherwise the run refuses to
    /// start.
    #[default]
    Auto,
    /// Bubblewrap, or refuse.
    Bwrap,
    /// Landlock plus seccomp (no user namespace needed), or refuse.
    Landlock,
    /// No sandbox: commands run with the agent's own rights (in a disposable container
    /// or VM only).
    Off,
}

impl FromStr for SandboxMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "auto" => Ok(Self::Auto),
            "bwrap" | "bubblewrap" => Ok(Self::Bwrap),
            "landlock" => Ok(Self::Landlock),
            "off" | "none" => Ok(Self::Off),
            other => Err(format!(
                "unknown sandbox mode `{other}`; use auto, bwrap, landlock or off"
            )),
        }
    }
}

/// Whether commands may use the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkAccess {
    /// No network at all: connections fail at once ("network is unreachable").
    #[default]
    Off,
    /// The host's network.
    On,
    /// Only the hosts of the run's allow-list, through the run's proxy (bubblewrap only).
    Allow,
}

impl FromStr for NetworkAccess {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "off" | "none" => Ok(Self::Off),
            "on" | "host" => Ok(Self::On),
            "allow" => Ok(Self::Allow),
            other => Err(format!(
                "unknown network setting `{other}`; use on, off or allow=HOST,HOST..."
            )),
        }
    }
}

/// How much of the workspace's `.git` folder commands may change.
///
/// What makes `.git` dangerous is code it runs later, outside the sandbox: a hook
/// (`.git/hooks/*`) or a command named in `.git/config` (`core.fsmonitor`,
/// `core.hooksPath`, a filter driver) runs when a person or the service next uses git in
/// that folder. Keeping those two read-only closes that path and leaves ordinary git work
/// (`git add`, `git rm --cached`, `git commit`) possible; `read_only` freezes the whole
/// folder instead, at the price of those commands failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GitProtection {
    /// `.git/hooks` and `.git/config` (and a submodule's, under `.git/modules`)
    /// read-only; the index, objects and refs writable.
    #[default]
    HooksAndConfig,
    /// The whole `.git` folder read-only.
    ReadOnly,
}

/// `[tools.sandbox]`: the sandbox a run asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    pub mode: SandboxMode,
    pub network: NetworkAccess,
    /// Most processes (and threads) a command may have at once; 0 for no cap.
    pub max_processes: u32,
    /// What of the workspace's `.git` stays read-only.
    pub git: GitProtection,
    /// More paths to hide from commands (an empty folder or file takes their place), on
    /// top of the credential folders of the home directory. `~/` means the home folder.
    pub hidden_paths: Vec<String>,
    /// With `network = "allow"`: the hosts commands may reach (`host` or `host:port`).
    pub allow_hosts: Vec<String>,
    /// Addresses pinned for allowed names, used instead of DNS; the one way to let a
    /// listed name reach a private address (a service of this network).
    pub host_addresses: BTreeMap<String, IpAddr>,
    /// With `network = "allow"`, where the run itself has no network (`agent-rs job` in
    /// the embedded runner's sandbox): the runner's proxy socket the allowed connections
    /// go through. Set by the job from its environment, never by a config file.
    #[serde(skip)]
    pub upstream_proxy: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mode: SandboxMode::Auto,
            network: NetworkAccess::Off,
            max_processes: 1024,
            git: GitProtection::HooksAndConfig,
            hidden_paths: Vec::new(),
            allow_hosts: Vec::new(),
            host_addresses: BTreeMap::new(),
            upstream_proxy: None,
        }
    }
}

/// Credential stores under the home folder that commands never see.
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
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
];

/// The mode in force for a run, as `result.json` and the trajectory record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxSummary {
    /// `bwrap`, `landlock` or `off`.
    pub mode: String,
    /// `off`, `on` or `allow`.
    pub network: NetworkAccess,
    /// With `allow`: the hosts commands may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// The process cap enforced per command, when one is (a `pids` cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_processes: Option<u32>,
}

/// Why no sandbox could be set up; the run must not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "no sandbox is usable for shell commands: {reason}. Install bubblewrap \
         (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: `dnf install bubblewrap`) \
         and allow unprivileged user namespaces (`sysctl user.max_user_namespaces=15000`, \
         and on Debian/Ubuntu `kernel.unprivileged_userns_clone=1` / \
         `kernel.apparmor_restrict_unprivileged_userns=0`), or use a kernel with Landlock \
         enabled (5.13 or later, `lsm=landlock,...` on its command line) for \
         `--sandbox landlock`, or run with `--sandbox off` to run commands without one \
         (only inside a disposable container or VM)"
    )]
    Unavailable { reason: String },
    #[error("{0}")]
    Network(String),
}

/// The paths hidden from commands: the credential stores of `home` and the configured
/// ones, those that exist.
pub(super) fn hidden_paths(config: &SandboxConfig, home: Option<&Path>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = home
        .map(|home| HIDDEN_IN_HOME.iter().map(|rel| home.join(rel)).collect())
        .unwrap_or_default();
    for configured in &config.hidden_paths {
        match (configured.strip_prefix("~/"), home) {
            (Some(rest), Some(home)) => paths.push(home.join(rest)),
            (Some(_), None) => {}
            (None, _) => paths.push(PathBuf::from(configured)),
        }
    }
    // A link is hidden where it points (bubblewrap would follow it anyway).
    let mut paths: Vec<PathBuf> = paths
        .iter()
        .filter(|path| path.is_absolute())
        .filter_map(|path| std::fs::canonicalize(path).ok())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
