//! The agent image's files as a volume every run mounts: the container runner's
//! counterpart of the Kubernetes Job's init container.
//!
//! Once per agent image (by image id) and per process, a short-lived container of the
//! agent image runs `agent-rs install` into a volume named after the image id, with no
//! network and no capabilities. `install` writes under a temporary name and renames, so
//! two processes installing at once, or a process installing into a volume a previous
//! one filled, leave a whole binary either way. A new agent image gets a new volume, so a
//! run never mixes binaries.
//!
//! A rebuilt or upgraded agent image would leave its predecessor's volume behind, one per
//! build: [`Installed::sweep`] (run whenever a run is removed, which includes the
//! reconciler's orphan sweep) removes the volumes of every other agent image. The engine
//! refuses to remove a volume a container still uses (a run of the old image, even
//! stopped), so those stay until a later sweep; a process that had filled a volume
//! another one swept checks before each launch and fills it again. An install container
//! is removed as soon as it ends (tried again while Podman's own clean-up refuses), and
//! a sweep removes the ones a dead process left, which would hold their volume forever.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerSummary, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptions,
};
use futures_util::StreamExt;
use tokio::sync::Mutex;

use super::{engine_error, launch_error, status_code};
use crate::runner::kubernetes::manifest::{AGENT_DIR, AGENT_IMAGE_BINARY, AGENT_IMAGE_CA_BUNDLE};
use crate::runner::{LABEL_MANAGED_BY, MANAGED_BY, RunnerError};

/// Every agent volume's name starts so, followed by the image id's first 12 digits.
pub const VOLUME_PREFIX: &str = "agent-rs-bin-";

/// Between an install container's volume and its random suffix.
const INSTALL_MARK: &str = "-install-";

/// An install takes seconds: an install container this old that is not running was left
/// behind by its process.
const STALE_INSTALL: Duration = Duration::from_secs(300);

/// The volumes this process has filled.
#[derive(Debug, Default)]
pub struct Installed {
    volumes: Mutex<HashSet<String>>,
}

impl Installed {
    /// The volume holding `agent_image`'s `agent-rs` and CA bundle, filled if this
    /// process has not done so yet.
    pub async fn volume(&self, docker: &Docker, agent_image: &str) -> Result<String, RunnerError> {
        let volume = volume_name(docker, agent_image).await?;
        let mut installed = self.volumes.lock().await;
        if installed.contains(&volume) {
            // Another process's sweep may have removed it since (it ran another image):
            // mounting a name that is gone would give the run an empty volume.
            match docker.inspect_volume(&volume).await {
                Ok(_) => return Ok(volume),
                Err(err) if status_code(&err) == Some(404) => {
                    installed.remove(&volume);
                }
                Err(err) => return Err(engine_error(format!("inspect the volume {volume}"), err)),
            }
        }
        let labels = HashMap::from([(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string())]);
        match docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(labels.clone()),
                ..VolumeCreateRequest::default()
            })
            .await
        {
            Ok(_) => {}
            Err(err) if status_code(&err) == Some(409) => {}
            Err(err) => return Err(engine_error(format!("create the volume {volume}"), err)),
        }
        install(docker, agent_image, &volume, labels).await?;
        tracing::info!(%volume, agent_image, "agent-rs installed into its volume");
        installed.insert(volume.clone());
        Ok(volume)
    }

    /// Removes the agent volumes of images other than `agent_image` (every one when that
    /// image is gone from the host), except those a container still uses; returns the
    /// names removed. Volumes without this service's label are never touched.
    pub async fn sweep(
        &self,
        docker: &Docker,
        agent_image: &str,
    ) -> Result<Vec<String>, RunnerError> {
        let current = match volume_name(docker, agent_image).await {
            Ok(name) => Some(name),
            Err(RunnerError::Launch(_)) => None,
            Err(err) => return Err(err),
        };
        remove_stale_install_containers(docker).await?;
        let label = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
        let filters = HashMap::from([("label", vec![label])]);
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let listed = docker
            .list_volumes(Some(options))
            .await
            .map_err(|err| engine_error("list the agent volumes", err))?;
        let mut removed = Vec::new();
        for volume in listed.volumes.unwrap_or_default() {
            let ours = volume.labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY);
            if !ours
                || !volume.name.starts_with(VOLUME_PREFIX)
                || current.as_deref() == Some(volume.name.as_str())
            {
                continue;
            }
            match docker
                .remove_volume(&volume.name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(()) => {
                    tracing::info!(volume = %volume.name, "an old agent image's volume removed");
                    self.volumes.lock().await.remove(&volume.name);
                    removed.push(volume.name);
                }
                // In use (a run of that image is still there), or gone meanwhile.
                Err(err) => {
                    tracing::debug!(volume = %volume.name, error = %err, "old agent volume kept");
                }
            }
        }
        Ok(removed)
    }
}

/// The volume name of `agent_image`: [`VOLUME_PREFIX`] and the start of its id.
async fn volume_name(docker: &Docker, agent_image: &str) -> Result<String, RunnerError> {
    let image = match docker.inspect_image(agent_image).await {
        Ok(image) => image,
        Err(err) if status_code(&err) == Some(404) => {
            return Err(RunnerError::Launch(format!(
                "the agent image `{agent_image}` is not on this host (scripts/images builds it; nothing is pulled)"
            )));
        }
        Err(err) => {
            return Err(engine_error(
                format!("inspect the agent image {agent_image}"),
                err,
            ));
        }
    };
    let id = image.id.unwrap_or_default();
    let id = id.strip_prefix("sha256:").unwrap_or(&id);
    let short: String = id.chars().take(12).collect();
    if short.is_empty() {
        return Err(RunnerError::Launch(format!(
            "the engine gave the agent image `{agent_image}` no id"
        )));
    }
    Ok(format!("{VOLUME_PREFIX}{short}"))
}

/// Runs `agent-rs install` from `agent_image` into `volume` and waits for it.
async fn install(
    docker: &Docker,
    agent_image: &str,
    volume: &str,
    labels: HashMap<String, String>,
) -> Result<(), RunnerError> {
    let name = format!("{volume}{INSTALL_MARK}{:08x}", fastrand::u32(..));
    let body = ContainerCreateBody {
        image: Some(agent_image.to_string()),
        entrypoint: Some(vec![AGENT_IMAGE_BINARY.to_string()]),
        cmd: Some(
            ["install", AGENT_DIR, "--with", AGENT_IMAGE_CA_BUNDLE]
                .map(String::from)
                .to_vec(),
        ),
        // The volume's root belongs to root; without capabilities root can write there
        // and nowhere it does not own.
        user: Some("0:0".to_string()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{volume}:{AGENT_DIR}")]),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".to_string()]),
            security_opt: Some(vec!["no-new-privileges".to_string()]),
            network_mode: Some("none".to_string()),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|err| launch_error(format!("create the install container {name}"), err))?;
    let result = run_to_end(docker, &name).await;
    remove_install_container(docker, &name).await;
    result
}

/// Removes an install container, trying again a few times: Podman can refuse while its
/// own clean-up of the just-ended container runs, and a container left behind holds its
/// volume, which no sweep could then remove. One that still stays is removed by a later
/// [`Installed::sweep`].
async fn remove_install_container(docker: &Docker, name: &str) {
    const ATTEMPTS: u32 = 4;
    for attempt in 1..=ATTEMPTS {
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        match docker.remove_container(name, Some(remove)).await {
            Ok(()) => return,
            Err(err) if status_code(&err) == Some(404) => return,
            Err(err) if attempt == ATTEMPTS => {
                tracing::warn!(container = %name, error = %err, "cannot remove the install container");
            }
            Err(err) => {
                tracing::debug!(container = %name, error = %err, attempt, "install container not removed yet");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
}

/// Removes the install containers older than [`STALE_INSTALL`] that are not running:
/// what a failed removal or a process that died mid-install left.
async fn remove_stale_install_containers(docker: &Docker) -> Result<(), RunnerError> {
    let label = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
    let filters = HashMap::from([
        ("label", vec![label]),
        ("status", vec!["created".to_string(), "exited".to_string()]),
    ]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|err| engine_error("list the install containers", err))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    for name in stale_install_containers(containers, now) {
        remove_install_container(docker, &name).await;
    }
    Ok(())
}

/// The names among `containers` (listed as not running) of install containers created
/// [`STALE_INSTALL`] or more before `now` (seconds since the epoch).
fn stale_install_containers(containers: Vec<ContainerSummary>, now: u64) -> Vec<String> {
    let mut stale = Vec::new();
    for container in containers {
        let created = container.created.and_then(|at| u64::try_from(at).ok());
        if created.is_none_or(|at| now.saturating_sub(at) < STALE_INSTALL.as_secs()) {
            continue;
        }
        for name in container.names.unwrap_or_default() {
            let name = name.trim_start_matches('/');
            if is_install_container(name) {
                stale.push(name.to_string());
            }
        }
    }
    stale
}

/// An install container's name: its volume's, [`INSTALL_MARK`] and 8 hex digits.
fn is_install_container(name: &str) -> bool {
    name.strip_prefix(VOLUME_PREFIX)
        .and_then(|rest| rest.split_once(INSTALL_MARK))
        .is_some_and(|(_, suffix)| {
            suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

async fn run_to_end(docker: &Docker, name: &str) -> Result<(), RunnerError> {
    docker
        .start_container(name, None)
        .await
        .map_err(|err| launch_error(format!("start the install container {name}"), err))?;
    // The wait stream reports a non-zero exit as an error; its code is read below.
    let _ = docker.wait_container(name, None).next().await;
    let state = docker
        .inspect_container(name, None)
        .await
        .map_err(|err| engine_error(format!("inspect the install container {name}"), err))?
        .state
        .unwrap_or_default();
    let code = state.exit_code.unwrap_or(-1);
    if code == 0 {
        return Ok(());
    }
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let output: Vec<String> = docker
        .logs(name, Some(options))
        .filter_map(|chunk| async move { chunk.ok().map(|chunk| chunk.to_string()) })
        .collect()
        .await;
    Err(RunnerError::Launch(format!(
        "the agent image's install step failed (exit code {code}): {}",
        output.concat().trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_containers_are_told_from_other_names() {
        assert!(is_install_container(&format!(
            "{VOLUME_PREFIX}39dd37d39795{INSTALL_MARK}0a1b2c3d"
        )));
        for name in [
            format!("{VOLUME_PREFIX}39dd37d39795"),
            format!("{VOLUME_PREFIX}39dd37d39795{INSTALL_MARK}0a1b2c3"),
            format!("{VOLUME_PREFIX}39dd37d39795{INSTALL_MARK}0a1b2c3g"),
            format!("other-39dd37d39795{INSTALL_MARK}0a1b2c3d"),
            "agent-rs-0a1b2c3d".to_string(),
        ] {
            assert!(!is_install_container(&name), "{name}");
        }
    }

    #[test]
    fn only_install_containers_past_the_stale_age_are_chosen() {
        let install = |suffix: &str, created: Option<i64>| ContainerSummary {
            names: Some(vec![format!(
                "/{VOLUME_PREFIX}39dd37d39795{INSTALL_MARK}{suffix}"
            )]),
            created,
            ..ContainerSummary::default()
        };
        let now = 1_000_000;
        let age = STALE_INSTALL.as_secs() as i64;
        let containers = vec![
            install("00000001", Some(now - age)),
            install("00000002", Some(now - age + 1)),
            install("00000003", None),
            ContainerSummary {
                names: Some(vec!["/agent-rs-0a1b2c3d".to_string()]),
                created: Some(0),
                ..ContainerSummary::default()
            },
        ];
        assert_eq!(
            stale_install_containers(containers, now as u64),
            vec![format!("{VOLUME_PREFIX}39dd37d39795{INSTALL_MARK}00000001")]
        );
    }
}
