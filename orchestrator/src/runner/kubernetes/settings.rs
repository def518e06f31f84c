//! The Kubernetes runner's settings: where Jobs go, which images they use, how long a
//! stuck pod is given. Part of the orchestrator's config file (`[runner.kubernetes]`).

use std::time::Duration;

use serde::Deserialize;

/// Where and how agent Jobs run. Every field has a default, so an empty section works
/// against a cluster set up from `deploy/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSettings {
    /// The namespace agent Jobs, their pods and Secrets live in (the worker's Role is
    /// limited to it).
    pub namespace: String,
    /// The slim image holding the static `agent-rs` and a CA bundle; its init container
    /// copies both into the pod's shared volume.
    pub agent_image: String,
    /// The image the agent runs in when the task names none: the repository's tools
    /// (python, node, a compiler) live here, `agent-rs` comes from the agent image.
    pub environment_image: String,
    /// `Always`, `IfNotPresent` or `Never`; unset leaves the cluster's default.
    pub image_pull_policy: Option<String>,
    /// The non-root user (and group) both containers run as.
    pub run_as_user: i64,
    /// How long a finished Job (and its pod and Secret) stays for inspection.
    pub ttl_after_finished_secs: i32,
    /// How long a pod may wait on an image pull, a bad container setting or a node before
    /// its task fails with that reason. Kubernetes itself waits forever.
    pub stuck_after_secs: u64,
    /// CPU (thousandths of a core) when the launch names none.
    pub default_cpu_millis: u32,
    /// Memory when the launch names none.
    pub default_memory_mib: u64,
    /// Size limit of the pod's scratch volume (workspace, outputs, `/tmp`).
    pub scratch_mib: u64,
    /// Names of Secrets holding registry credentials for the two images.
    pub image_pull_secrets: Vec<String>,
}

impl Default for KubeSettings {
    fn default() -> Self {
        Self {
            namespace: "agents".to_string(),
            agent_image: "agent-rs/agent:latest".to_string(),
            environment_image: "agent-rs/env-base:latest".to_string(),
            image_pull_policy: None,
            run_as_user: 65532,
            ttl_after_finished_secs: 3600,
            stuck_after_secs: 120,
            default_cpu_millis: 1000,
            default_memory_mib: 2048,
            scratch_mib: 4096,
            image_pull_secrets: Vec::new(),
        }
    }
}

impl KubeSettings {
    pub fn stuck_after(&self) -> Duration {
        Duration::from_secs(self.stuck_after_secs)
    }
}
