//! The container runner's settings (`[runner.container]` in the orchestrator's config):
//! which engine, which images, which network, what a run may use.

use std::path::PathBuf;

use serde::Deserialize;

/// The network mode that gives a run only the per-run egress proxy (see
/// [`super::ContainerRunner`]).
pub const NETWORK_EGRESS: &str = "egress";

/// Where and how agent containers run. Every field has a default, so an empty section
/// works on a host where `scripts/images` built the images and Podman (or Docker) serves
/// its API on the usual socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerSettings {
    /// The engine's API socket (`unix:///PATH` or a path). Unset: `DOCKER_HOST` when it
    /// names a Unix socket, else Podman's rootful socket if it exists, else Docker's.
    pub socket: Option<String>,
    /// The slim image holding the static `agent-rs` and a CA bundle, copied once per
    /// image into a volume that every run mounts read-only.
    pub agent_image: String,
    /// The image the agent runs in when the task names none.
    pub environment_image: String,
    /// The non-root user (and group) the agent runs as.
    pub run_as_user: u32,
    /// `egress` (default): no network but a Unix socket to a per-run proxy that lets
    /// through the model endpoint and the run's signed URLs only. Anything else is the
    /// engine's network mode as it is (`none`, `host`, `bridge`, a network's name).
    pub network: String,
    /// `host:address` entries added to the container's `/etc/hosts`.
    pub extra_hosts: Vec<String>,
    /// How secret values (the model's API key, the signed URLs) reach the agent.
    pub secrets: SecretsMode,
    /// CPU (thousandths of a core) when the launch names none.
    pub default_cpu_millis: u32,
    /// Memory when the launch names none.
    pub default_memory_mib: u64,
    /// Size of the run's writable scratch space (`/scratch`: workspace and outputs) and of
    /// its `/tmp`; both are tmpfs, counted in the run's memory.
    pub scratch_mib: u64,
    /// Processes a run may have at once.
    pub pids_limit: i64,
    /// Seconds each call to the engine may take to answer.
    pub api_timeout_secs: u64,
    /// Where per-run files live (the egress socket, the secrets folder). Unset: the
    /// orchestrator's runs folder plus `containers/`.
    pub state_dir: Option<PathBuf>,
}

/// How secret values reach the agent in its container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretsMode {
    /// Through a file in a folder of the run mounted into the container, which a `sh`
    /// wrapper reads and deletes before it becomes the agent (see
    /// [`super::spec`]): the engine's inspectable config never holds the values, and
    /// the agent's commands find no file to read. The environment image needs a POSIX
    /// `sh` and `rm`; without them the container ends with code 2 before the agent runs.
    #[default]
    File,
    /// As plain environment variables of the container, for images without a shell:
    /// the agent's commands cannot read them (the job is not dumpable and scrubs its
    /// commands' environment), but `podman inspect` shows them to whoever may run it.
    Env,
}

impl Default for ContainerSettings {
    fn default() -> Self {
        Self {
            socket: None,
            agent_image: "agent-rs/agent:latest".to_string(),
            environment_image: "agent-rs/env-base:latest".to_string(),
            run_as_user: 65532,
            network: NETWORK_EGRESS.to_string(),
            extra_hosts: Vec::new(),
            secrets: SecretsMode::File,
            default_cpu_millis: 1000,
            default_memory_mib: 2048,
            scratch_mib: 1024,
            pids_limit: 1024,
            api_timeout_secs: 60,
            state_dir: None,
        }
    }
}

impl ContainerSettings {
    /// The engine's socket path: the setting, `DOCKER_HOST`, Podman's, Docker's.
    pub fn socket_path(&self) -> String {
        let strip = |value: &str| value.strip_prefix("unix://").unwrap_or(value).to_string();
        if let Some(socket) = &self.socket {
            return strip(socket);
        }
        if let Ok(host) = std::env::var("DOCKER_HOST")
            && host.starts_with("unix://")
        {
            return strip(&host);
        }
        let podman = "/run/podman/podman.sock";
        if std::path::Path::new(podman).exists() {
            return podman.to_string();
        }
        "/var/run/docker.sock".to_string()
    }

    pub fn egress(&self) -> bool {
        self.network == NETWORK_EGRESS
    }
}
