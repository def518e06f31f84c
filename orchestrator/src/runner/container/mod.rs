//! The single-host runner: each run is a container, through the Docker Engine API
//! (Podman serves the same API: `podman system service --time=0 unix:///PATH`).
//!
//! The same two steps as a Kubernetes Job, on one machine: the agent image provides
//! `agent-rs` ([`install`]: copied once per image into a volume), the task's environment
//! image runs it with the same user, limits and locks ([`spec`]). The container is named
//! by [`crate::runner::run_name`] and labelled like a Job; launch creates it and starts
//! it, and a second launch of the name finds it (the engine refuses a second container
//! of a name) and only starts it if a crash left it created but not started. Status and
//! watch read the engine, never this process's memory, so a restarted worker re-attaches
//! ([`follow`]). Cancel removes the container, forced (the engine kills it first).
//!
//! Per run the runner keeps a folder on the host ([`RunFiles`]), readable by its owner
//! only: the secrets folder the container mounts, whose file the container's wrapper
//! deletes once read (see [`spec`]), and with `network = "egress"` (the default) the
//! socket of the run's egress proxy (the process runner's,
//! [`crate::runner::process::egress`]): the container has no network of its own, and the
//! proxy lets through the model endpoint and the run's signed URLs only. The folder goes
//! with the run (cancel); the secrets folder as soon as the run is seen over, and its
//! write bit as soon as the runner sees the file gone (the agent's first event, or a
//! `status` or `watch` of the running container), so the agent cannot use it to write
//! to the host's disk. Removing a run also removes the agent volumes older agent images
//! left and nothing uses any more.

mod follow;
mod install;
pub mod settings;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio_util::sync::CancellationToken;

pub use self::install::VOLUME_PREFIX;
pub use self::settings::{ContainerSettings, SecretsMode};
use super::process::egress;
use super::{LaunchSpec, RunHandle, RunInfo, RunStatus, Runner, RunnerError, RunnerEvent};

/// Runs `agent-rs job` as containers on one engine.
pub struct ContainerRunner {
    docker: Docker,
    settings: ContainerSettings,
    state_dir: PathBuf,
    installed: install::Installed,
    /// Ends the egress proxies this process serves (when it is dropped).
    egress_stop: CancellationToken,
    /// The watches this process follows, per run, so `detach` can end them.
    watches: Mutex<HashMap<RunHandle, CancellationToken>>,
}

impl std::fmt::Debug for ContainerRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerRunner")
            .field("settings", &self.settings)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl ContainerRunner {
    /// A runner on the engine `settings` names, keeping its per-run files under
    /// `settings.state_dir` or else `default_state_dir`. A socket that does not exist is
    /// refused here; an engine that stops answering later fails the calls (transiently).
    pub fn new(
        settings: ContainerSettings,
        default_state_dir: PathBuf,
    ) -> Result<Self, RunnerError> {
        let socket = settings.socket_path();
        let docker = Docker::connect_with_unix(
            &socket,
            settings.api_timeout_secs.max(1),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|err| {
            RunnerError::failed(format!("reach the container engine on {socket}"), err)
        })?;
        let state_dir = settings.state_dir.clone().unwrap_or(default_state_dir);
        Ok(Self {
            docker,
            settings,
            state_dir,
            installed: install::Installed::default(),
            egress_stop: CancellationToken::new(),
            watches: Mutex::new(HashMap::new()),
        })
    }

    /// Checks that the engine answers (at start-up: a wrong socket fails the start).
    pub async fn ping(&self) -> Result<(), RunnerError> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|err| engine_error("reach the container engine", err))
    }

    fn files(&self, handle: &RunHandle) -> Result<RunFiles, RunnerError> {
        RunFiles::new(&self.state_dir, &handle.0)
    }

    fn watches(&self) -> std::sync::MutexGuard<'_, HashMap<RunHandle, CancellationToken>> {
        // A poisoned map only means a panic elsewhere while holding it; single inserts
        // and removes leave it consistent.
        self.watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the run's files and serves its egress proxy; the mounts they make.
    fn prepare(
        &self,
        files: &RunFiles,
        spec: &LaunchSpec,
    ) -> std::io::Result<(Option<PathBuf>, Option<PathBuf>)> {
        files.create()?;
        let secrets = if self.settings.secrets == SecretsMode::File && !spec.secret_env.is_empty() {
            files.write_secrets(&spec::secrets_file(spec))?;
            Some(files.secrets_dir())
        } else {
            None
        };
        let egress_dir = if self.settings.egress() {
            let policy = egress::EgressPolicy::from_spec(spec);
            policy.save(&files.dir)?;
            egress::spawn(files.dir.clone(), policy, self.egress_stop.clone())?;
            files.open_egress_socket()?;
            Some(files.dir.join(egress::EGRESS_DIR))
        } else {
            None
        };
        Ok((secrets, egress_dir))
    }

    /// Serves the egress proxy of a run a previous process launched, if it needs one.
    async fn ensure_egress(&self, files: &RunFiles) {
        if self.settings.egress() && files.dir.is_dir() {
            egress::ensure(&files.dir, self.egress_stop.clone()).await;
            if let Err(err) = files.open_egress_socket() {
                tracing::warn!(run = %files.name, error = %err, "cannot open the egress socket to the agent");
            }
        }
    }

    /// Removes the agent volumes of images other than the configured one that no
    /// container uses any more (see [`install`]); returns their names. Every removal of a
    /// run (its end, a cancel, the reconciler's orphan sweep) runs it.
    pub async fn sweep_agent_volumes(&self) -> Result<Vec<String>, RunnerError> {
        self.installed
            .sweep(&self.docker, &self.settings.agent_image)
            .await
    }

    async fn start(&self, name: &str) -> Result<(), RunnerError> {
        match self.docker.start_container(name, None).await {
            Ok(()) => Ok(()),
            // 304: started already.
            Err(err) if status_code(&err) == Some(304) => Ok(()),
            Err(err) => Err(launch_error(format!("start the container {name}"), err)),
        }
    }
}

/// The egress proxies this runner serves end with it, as they would with the server.
impl Drop for ContainerRunner {
    fn drop(&mut self) {
        self.egress_stop.cancel();
    }
}

#[async_trait]
impl Runner for ContainerRunner {
    async fn launch(&self, spec: LaunchSpec) -> Result<RunHandle, RunnerError> {
        let files = self.files(&spec.name)?;
        match inspect_status(&self.docker, &spec.name.0).await? {
            RunStatus::NotFound => {}
            RunStatus::Pending => {
                // Created, never started: a launch that stopped half-way.
                self.ensure_egress(&files).await;
                self.start(&spec.name.0).await?;
                return Ok(spec.name);
            }
            RunStatus::Running | RunStatus::Exited { .. } => {
                tracing::info!(task_id = %spec.task_id, run = %spec.name, "container started before; not started again");
                return Ok(spec.name);
            }
        }
        let volume = self
            .installed
            .volume(&self.docker, &self.settings.agent_image)
            .await?;
        let (secrets, egress_dir) = self.prepare(&files, &spec).map_err(|err| {
            RunnerError::Launch(format!(
                "cannot prepare the files of run {}: {err}",
                spec.name
            ))
        })?;
        let body = spec::container(
            &spec,
            &self.settings,
            &spec::Mounts {
                agent_volume: &volume,
                secrets_dir: secrets.as_deref(),
                egress_dir: egress_dir.as_deref(),
            },
        );
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name.0)
            .build();
        match self.docker.create_container(Some(options), body).await {
            Ok(_) => {
                tracing::info!(task_id = %spec.task_id, run = %spec.name, "agent container created");
            }
            // Docker answers 409 for a name in use, Podman 500: whether a container of the
            // name exists is what tells.
            Err(err) => match inspect_status(&self.docker, &spec.name.0).await? {
                RunStatus::NotFound if status_code(&err) == Some(404) => {
                    return Err(RunnerError::Launch(format!(
                        "cannot create the container {}: {err} (images are built locally, never pulled)",
                        spec.name
                    )));
                }
                RunStatus::NotFound => {
                    return Err(launch_error(
                        format!("create the container {}", spec.name),
                        err,
                    ));
                }
                // Created, never started: a launch that stopped half-way.
                RunStatus::Pending => {}
                RunStatus::Running | RunStatus::Exited { .. } => {
                    tracing::info!(task_id = %spec.task_id, run = %spec.name, "container started before; not started again");
                    return Ok(spec.name);
                }
            },
        }
        self.start(&spec.name.0).await?;
        Ok(spec.name)
    }

    async fn status(&self, handle: &RunHandle) -> Result<RunStatus, RunnerError> {
        let files = self.files(handle)?;
        let status = inspect_status(&self.docker, &handle.0).await?;
        match status {
            RunStatus::Exited { .. } => files.run_over(),
            RunStatus::Running => files.seal_secrets(),
            RunStatus::Pending | RunStatus::NotFound => {}
        }
        Ok(status)
    }

    async fn watch(
        &self,
        handle: &RunHandle,
        skip: u64,
    ) -> Result<BoxStream<'static, RunnerEvent>, RunnerError> {
        let files = self.files(handle)?;
        match inspect_status(&self.docker, &handle.0).await? {
            RunStatus::NotFound => {
                return Err(RunnerError::UnknownRun(format!(
                    "{handle}: no such container"
                )));
            }
            RunStatus::Pending | RunStatus::Running => {
                self.ensure_egress(&files).await;
                files.seal_secrets();
            }
            RunStatus::Exited { .. } => {}
        }
        let stop = self
            .watches()
            .entry(handle.clone())
            .or_default()
            .child_token();
        let receiver = follow::spawn(self.docker.clone(), handle.0.clone(), files, skip, stop);
        Ok(
            futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|event| (event, receiver))
            })
            .boxed(),
        )
    }

    async fn detach(&self, handle: &RunHandle) -> Result<(), RunnerError> {
        if let Some(watches) = self.watches().remove(handle) {
            watches.cancel();
        }
        Ok(())
    }

    async fn cancel(&self, handle: &RunHandle) -> Result<(), RunnerError> {
        let files = self.files(handle)?;
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(&handle.0, Some(options)).await {
            Ok(()) => {}
            Err(err) if status_code(&err) == Some(404) => {}
            Err(err) => return Err(engine_error(format!("remove the container {handle}"), err)),
        }
        files
            .remove()
            .map_err(|err| RunnerError::failed(format!("remove the files of run {handle}"), err))?;
        self.detach(handle).await?;
        tracing::info!(run = %handle, "run cancelled");
        // What older agent images left: the run is removed either way.
        if let Err(err) = self.sweep_agent_volumes().await {
            tracing::warn!(error = %err, "cannot sweep old agent volumes");
        }
        Ok(())
    }

    async fn list(&self, selector: &BTreeMap<String, String>) -> Result<Vec<RunInfo>, RunnerError> {
        let labels: Vec<String> = selector
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let filters = HashMap::from([("label", labels)]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|err| engine_error("list containers", err))?;
        let mut runs = Vec::new();
        for container in containers {
            let Some(name) = container
                .names
                .as_ref()
                .and_then(|names| names.first())
                .map(|name| name.trim_start_matches('/').to_string())
            else {
                continue;
            };
            let labels: BTreeMap<String, String> =
                container.labels.unwrap_or_default().into_iter().collect();
            // The engine filters too; checked again so a loose filter never widens a
            // cleanup.
            if !selector
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
            {
                continue;
            }
            let status = inspect_status(&self.docker, &name).await?;
            runs.push(RunInfo {
                handle: RunHandle(name),
                labels,
                status,
            });
        }
        runs.sort_by(|a, b| a.handle.cmp(&b.handle));
        Ok(runs)
    }
}

/// The runner's folder of one run on the host.
#[derive(Debug, Clone)]
pub struct RunFiles {
    name: String,
    dir: PathBuf,
}

impl RunFiles {
    /// Refuses names that are not run names (a name from a row is data: it must not walk
    /// out of the state folder or name someone else's container).
    fn new(state_dir: &Path, name: &str) -> Result<Self, RunnerError> {
        let valid = name.len() <= 63
            && name.starts_with("agent-")
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(RunnerError::UnknownRun(format!(
                "`{name}` is not a run name (agent-TASK_ID-ATTEMPT)"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            dir: state_dir.join(name),
        })
    }

    /// The folder mounted at [`spec::SECRETS_DIR`].
    fn secrets_dir(&self) -> PathBuf {
        self.dir.join("secrets")
    }

    fn secrets_file(&self) -> PathBuf {
        self.secrets_dir().join(spec::SECRETS_FILE)
    }

    /// The folder, readable by its owner only (whatever the umask, and if it was there
    /// before): the container sees the files mounted into it, nobody else on the host
    /// sees them. Every mode below is set explicitly for the same reason: a umask would
    /// take away the bits the container's user needs.
    fn create(&self) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
    }

    /// The secrets file, in a folder of its own: written whole under a temporary name
    /// while the folder is closed, then readable by the container's user ("other":
    /// `r--`) and deletable by it (the folder: `-wx` for "other", no sticky bit, no
    /// listing). The run's folder keeps everyone else on the host out all along.
    fn write_secrets(&self, text: &str) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let dir = self.secrets_dir();
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let tmp = dir.join(format!("{}.tmp", spec::SECRETS_FILE));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(0o444))?;
        file.sync_all()?;
        std::fs::rename(tmp, self.secrets_file())?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o703))
    }

    /// Once the wrapper has deleted the secrets file, the folder has done its job: its
    /// write bit goes, so the agent's commands cannot fill the host's disk through it.
    /// Nothing while the file is still there (the wrapper has not run yet).
    fn seal_secrets(&self) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.secrets_dir();
        if dir.is_dir()
            && !self.secrets_file().exists()
            && let Err(err) = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        {
            tracing::warn!(run = %self.name, error = %err, "cannot close the run's secrets folder");
        }
    }

    /// The egress socket, open to the container's (other) user.
    fn open_egress_socket(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.dir.join(egress::EGRESS_DIR);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(
            dir.join(egress::SOCKET),
            std::fs::Permissions::from_mode(0o666),
        )
    }

    /// The run is over: its secrets (if the wrapper never ran) are no longer needed, and its egress proxy stops
    /// (it ends when the `exit` mark appears).
    fn run_over(&self) {
        if !self.dir.is_dir() {
            return;
        }
        let _ = std::fs::remove_dir_all(self.secrets_dir());
        let _ = std::fs::write(self.dir.join("exit"), b"over\n");
    }

    fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

/// Where container `name` is, from the engine.
pub(crate) async fn inspect_status(docker: &Docker, name: &str) -> Result<RunStatus, RunnerError> {
    let container = match docker.inspect_container(name, None).await {
        Ok(container) => container,
        Err(err) if status_code(&err) == Some(404) => return Ok(RunStatus::NotFound),
        // Podman reports a container between its end and its exit record as `stopped`,
        // a state the Docker API (and its client's types) does not have: not over yet.
        Err(bollard::errors::Error::JsonDataError { message, .. })
            if message.contains("unknown variant `stopped`") =>
        {
            return Ok(RunStatus::Running);
        }
        Err(err) => return Err(engine_error(format!("inspect the container {name}"), err)),
    };
    let state = container.state.unwrap_or_default();
    if state.running == Some(true) || state.paused == Some(true) || state.restarting == Some(true) {
        return Ok(RunStatus::Running);
    }
    let started = state
        .started_at
        .as_deref()
        .is_some_and(|at| !at.is_empty() && !at.starts_with("0001-"));
    if !started {
        return Ok(RunStatus::Pending);
    }
    let code = state.exit_code.and_then(|code| i32::try_from(code).ok());
    let reason = if state.oom_killed == Some(true) {
        "OOMKilled: the run went over its memory limit".to_string()
    } else if let Some(error) = state.error.filter(|error| !error.is_empty()) {
        error
    } else if code == Some(0) {
        "completed".to_string()
    } else {
        format!("exited with code {}", code.unwrap_or(-1))
    };
    Ok(RunStatus::Exited { code, reason })
}

/// The HTTP status of an error the engine answered with.
pub(crate) fn status_code(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// An engine error as a runner error: transient when the engine could not be reached,
/// timed out or failed inside.
pub(crate) fn engine_error(doing: impl Into<String>, err: bollard::errors::Error) -> RunnerError {
    let transient = match &err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => {
            *status_code >= 500
        }
        bollard::errors::Error::RequestTimeoutError
        | bollard::errors::Error::IOError { .. }
        | bollard::errors::Error::HyperResponseError { .. }
        | bollard::errors::Error::HyperLegacyError { .. }
        | bollard::errors::Error::SocketNotFoundError(_) => true,
        _ => false,
    };
    if transient {
        RunnerError::Unavailable {
            doing: doing.into(),
            source: Box::new(err),
        }
    } else {
        RunnerError::failed(doing, err)
    }
}

/// Like [`engine_error`], but any answer of the engine is a launch error, which retrying
/// does not fix: Podman answers 500 for a bad setting too (an entrypoint the image does
/// not have, a mount it cannot make), and a task must fail at once with that reason.
pub(crate) fn launch_error(doing: String, err: bollard::errors::Error) -> RunnerError {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            RunnerError::Launch(format!("cannot {doing}: {message}"))
        }
        err => match engine_error(doing.clone(), err) {
            RunnerError::Failed { source, .. } => {
                RunnerError::Launch(format!("cannot {doing}: {source}"))
            }
            other => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .permissions()
            .mode()
            & 0o7777
    }

    /// The run's folder is its owner's; inside it, the secrets file is readable by
    /// "other" (the container's user) and the folder lets "other" delete it, without
    /// listing it; once it is gone the folder closes. Whatever folder was there before.
    #[test]
    fn the_secrets_file_is_readable_and_deletable_by_the_container_only_until_it_is_gone() {
        let state = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let files =
            RunFiles::new(state.path(), "agent-abc-1").unwrap_or_else(|err| panic!("{err}"));
        std::fs::create_dir(&files.dir).unwrap_or_else(|err| panic!("{err}"));
        std::fs::set_permissions(&files.dir, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|err| panic!("{err}"));
        files.create().unwrap_or_else(|err| panic!("{err}"));
        files
            .write_secrets("A='1'\n")
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(mode(&files.dir), 0o700);
        assert_eq!(mode(&files.secrets_dir()), 0o703);
        assert_eq!(mode(&files.secrets_file()), 0o444);
        assert_eq!(
            std::fs::read_to_string(files.secrets_file()).unwrap_or_default(),
            "A='1'\n"
        );
        // Not read yet: the folder stays open.
        files.seal_secrets();
        assert_eq!(mode(&files.secrets_dir()), 0o703);
        // Written again (a launch retried before its container existed): the same.
        files
            .write_secrets("A='2'\n")
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(mode(&files.secrets_dir()), 0o703);
        assert_eq!(
            std::fs::read_dir(files.secrets_dir())
                .map(Iterator::count)
                .unwrap_or_default(),
            1
        );
        std::fs::remove_file(files.secrets_file()).unwrap_or_else(|err| panic!("{err}"));
        files.seal_secrets();
        assert_eq!(mode(&files.secrets_dir()), 0o700);
        files.run_over();
        assert!(!files.secrets_dir().exists());
    }
}
