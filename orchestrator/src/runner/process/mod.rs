//! The embedded runner: `agent-rs job` as a local process that outlives the server.
//!
//! Each run gets a folder `runs/{name}/` ([`run_dir`]) and a supervisor: a small `sh`
//! that leads the run's own process group, writes its pid, runs the agent with stdout
//! into `events.jsonl` (stderr appended to `runs/{task_id}.stderr.log`), and records the
//! agent's exit status when it ends. The server is only the supervisor's parent: when it
//! dies (even by `SIGKILL`) the run goes on, and a restarted server, or any process with
//! the same runs folder, reads the folder to tell the run's status and follow its events
//! ([`tail`]). Launch is idempotent: the folder is created with `mkdir`, so a second
//! launch of a name finds it and starts nothing.
//!
//! The agent starts with a cleared environment (a minimal `PATH`, `HOME`, `LANG`, plus
//! the launch spec's plain and secret variables), so nothing of the server's own
//! environment (its storage keys, say) leaks into the run; secrets live only in the
//! processes' environment, never in the folder. Every process of the run inherits
//! `AGENT_TASK_ID` and `AGENT_RUN_NAME`, so a cancel (or the agent's exit) kills
//! everything it started, even the commands its shell tool runs in groups of their own
//! ([`procs`], Linux `/proc`). A deadline is enforced by whoever watches the run (the
//! worker), and by the agent's own timeout.
//!
//! The agent itself runs in a [`sandbox`] (bubblewrap, from the configuration): it sees
//! neither the data folder nor the other runs nor the server's processes. The supervisor
//! stays outside it, so the run's folder and re-attaching work the same either way.

pub mod egress;
mod procs;
mod run_dir;
pub mod sandbox;
mod sandbox_hosts;
mod tail;

pub(crate) use tail::parse_event;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use secrecy::ExposeSecret;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use self::procs::{RUN_NAME_VAR, group_exists, kill_run_processes, signal_group};
use self::run_dir::{RunDir, RunRecord};
pub use self::sandbox::{RunSandbox, RunSandboxConfig, RunSandboxMode};
pub use self::sandbox_hosts::InvalidSandboxHost;
use super::{LaunchSpec, RunHandle, RunInfo, RunStatus, Runner, RunnerError, RunnerEvent};
use crate::config::OrchestratorConfig;
use crate::store::millis;
use crate::task::{TaskId, now_ms};

/// The environment variable that ties a process to its task.
const TASK_ID_VAR: &str = "AGENT_TASK_ID";
/// The variable that gives the agent's commands their network (`allow=HOST,...`).
const NETWORK_VAR: &str = "AGENT_NETWORK";
/// How often a cancel checks whether the group is gone before escalating to SIGKILL.
const CANCEL_POLL: Duration = Duration::from_millis(50);
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The supervisor: `sh -c SUPERVISOR supervise STDERR_LOG MEMORY_KIB AGENT_ARGV...`, run
/// in the run's folder (`MEMORY_KIB` may be empty; `AGENT_ARGV` is the agent, or the
/// sandbox program and its options ending with the agent). It must leave the exit status
/// behind even when nobody waits for it.
const SUPERVISOR: &str = r#"
log="$1"; memory="$2"; shift 2
if [ -n "$memory" ]; then ulimit -v "$memory" || exit 70; fi
echo $$ > pid.tmp && mv pid.tmp pid || exit 70
"$@" job > events.jsonl 2>> "$log" < /dev/null
status=$?
echo "$status" > exit.tmp && mv exit.tmp exit
"#;

/// Runs `{agent_bin} job` as a supervised local process.
#[derive(Debug)]
pub struct ProcessRunner {
    agent_bin: PathBuf,
    runs_dir: PathBuf,
    kill_grace: Duration,
    base_env: BTreeMap<String, String>,
    /// What the agent runs inside.
    sandbox: RunSandbox,
    /// `AGENT_NETWORK` for a launch that names none (from `[sandbox] allow_hosts`).
    default_network: Option<String>,
    /// Addresses the runs' proxies pin for allowed names.
    host_addresses: BTreeMap<String, std::net::IpAddr>,
    /// Ends the egress proxies this process serves (when it is dropped).
    egress_stop: CancellationToken,
    /// The watches this process follows, per run, so `detach` can end them.
    watches: Mutex<HashMap<RunHandle, CancellationToken>>,
}

impl ProcessRunner {
    /// `runs_dir` holds one folder per run and one stderr log per task; `kill_grace` is
    /// the time between SIGTERM and SIGKILL on cancel.
    pub fn new(agent_bin: PathBuf, runs_dir: PathBuf, kill_grace: Duration) -> Self {
        let mut base_env = BTreeMap::new();
        let path = std::env::var("PATH").unwrap_or_else(|_| FALLBACK_PATH.to_string());
        base_env.insert("PATH".to_string(), path);
        for name in ["HOME", "LANG"] {
            if let Ok(value) = std::env::var(name) {
                base_env.insert(name.to_string(), value);
            }
        }
        Self {
            agent_bin,
            runs_dir,
            kill_grace,
            base_env,
            sandbox: RunSandbox::off(),
            default_network: None,
            host_addresses: BTreeMap::new(),
            egress_stop: CancellationToken::new(),
            watches: Mutex::new(HashMap::new()),
        }
    }

    /// The runner of `config`, its agents in the configured sandbox (which hides the data
    /// folder, and the runs folder when it is elsewhere).
    pub fn from_config(config: &OrchestratorConfig) -> Self {
        let runner = Self::new(
            config.agent_bin.clone(),
            config.runs_dir(),
            config.worker.kill_grace(),
        );
        let home = runner.base_env.get("HOME").map(PathBuf::from);
        let path = runner.base_env.get("PATH").cloned().unwrap_or_default();
        let sandbox = RunSandbox::resolve(
            &config.sandbox,
            vec![config.data_dir.clone(), config.runs_dir()],
            home.as_deref(),
            Some(std::ffi::OsStr::new(&path)),
        );
        match sandbox.mode() {
            "unusable" => tracing::error!(
                "agents cannot be sandboxed here, so every launch will fail: {}",
                sandbox
                    .agent_argv(Path::new("agent-rs"), None)
                    .err()
                    .map(|err| err.to_string())
                    .unwrap_or_default()
            ),
            mode => tracing::info!(sandbox = mode, "embedded runner ready"),
        }
        runner
            .with_sandbox(sandbox)
            .with_network(&config.sandbox.allow_hosts, &config.sandbox.host_addresses)
    }

    /// The same runner, its agents' commands allowed `hosts` (when a launch names no
    /// network), reached at the `pinned` addresses where given.
    pub fn with_network(
        mut self,
        hosts: &[String],
        pinned: &BTreeMap<String, std::net::IpAddr>,
    ) -> Self {
        self.default_network = (!hosts.is_empty()).then(|| format!("allow={}", hosts.join(",")));
        self.host_addresses = pinned.clone();
        self
    }

    /// The same runner, starting agents in `sandbox`.
    pub fn with_sandbox(mut self, sandbox: RunSandbox) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Where a task's agent stderr goes (appended to across attempts).
    pub fn log_path(&self, task_id: TaskId) -> PathBuf {
        self.runs_dir.join(format!("{task_id}.stderr.log"))
    }

    fn run_dir(&self, handle: &RunHandle) -> Result<RunDir, RunnerError> {
        RunDir::new(&self.runs_dir, &handle.0)
    }

    /// The agent binary as a path the supervisor can run, or a launch error naming the
    /// setting to fix.
    fn agent_path(&self) -> Result<PathBuf, RunnerError> {
        let bin = &self.agent_bin;
        let found = if bin.components().count() > 1 {
            Some(bin.clone()).filter(|path| is_executable(path))
        } else {
            let path = self.base_env.get("PATH").map(String::as_str).unwrap_or("");
            std::env::split_paths(path)
                .map(|dir| dir.join(bin))
                .find(|candidate| is_executable(candidate))
        };
        found.ok_or_else(|| {
            RunnerError::Launch(format!(
                "the agent binary `{}` was not found; set agent_bin (--agent-bin) to the agent-rs binary",
                bin.display()
            ))
        })
    }

    /// Creates the run's folder and starts its supervisor. `Ok(false)`: the folder was
    /// there already (the run was launched before).
    fn start(&self, dir: &RunDir, spec: &LaunchSpec) -> Result<bool, RunnerError> {
        let with_network;
        let spec = match &self.default_network {
            Some(network) if !spec.env.contains_key(NETWORK_VAR) => {
                let mut spec = spec.clone();
                spec.env.insert(NETWORK_VAR.to_string(), network.clone());
                with_network = spec;
                &with_network
            }
            _ => spec,
        };
        let agent = self.agent_path()?;
        let agent = std::fs::canonicalize(&agent).unwrap_or(agent);
        let egress_dir = dir.file(egress::EGRESS_DIR);
        let agent_argv = self.sandbox.agent_argv(&agent, Some(&egress_dir))?;
        let io = |doing: &str| {
            let doing = format!("{doing} for run {}", dir.name);
            move |err: std::io::Error| RunnerError::Launch(format!("cannot {doing}: {err}"))
        };
        std::fs::create_dir_all(&self.runs_dir).map_err(io("create the runs folder"))?;
        match std::fs::create_dir(&dir.path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(err) => return Err(io("create the run folder")(err)),
        }
        let started = self
            .write_record(dir, spec)
            .map_err(io("write the run record"))
            .and_then(|()| {
                self.start_egress(dir, spec)
                    .map_err(io("start the egress proxy"))
            })
            .and_then(|()| self.spawn(dir, spec, &agent_argv));
        if started.is_err() {
            // Nothing runs: let a later launch of the name try again.
            let _ = std::fs::remove_dir_all(&dir.path);
        }
        started.map(|()| true)
    }

    /// The sandboxed agent's egress proxy: its policy saved in the run's folder (for a
    /// restarted server) and served on the socket bound into the sandbox.
    fn start_egress(&self, dir: &RunDir, spec: &LaunchSpec) -> std::io::Result<()> {
        if !self.sandbox.is_bwrap() {
            return Ok(());
        }
        let policy =
            egress::EgressPolicy::from_spec(spec).with_host_addresses(&self.host_addresses);
        policy.save(&dir.path)?;
        egress::spawn(dir.path.clone(), policy, self.egress_stop.clone())
    }

    fn write_record(&self, dir: &RunDir, spec: &LaunchSpec) -> std::io::Result<()> {
        let now = now_ms();
        dir.write_record(&RunRecord {
            name: dir.name.clone(),
            task_id: spec.task_id,
            attempt: spec.attempt,
            labels: spec.labels.clone(),
            launched_at: now,
            deadline_at: now.saturating_add(millis(spec.deadline)),
        })
    }

    fn spawn(
        &self,
        dir: &RunDir,
        spec: &LaunchSpec,
        agent_argv: &[std::ffi::OsString],
    ) -> Result<(), RunnerError> {
        let memory_kib = spec
            .resources
            .memory_bytes
            .map(|bytes| (bytes / 1024).max(1).to_string())
            .unwrap_or_default();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("supervise")
            .arg(self.log_path(spec.task_id))
            .arg(memory_kib)
            .args(agent_argv)
            .current_dir(&dir.path)
            .env_clear()
            .envs(&self.base_env)
            .envs(&spec.env)
            .envs(
                spec.secret_env
                    .iter()
                    .map(|(name, value)| (name, value.expose_secret())),
            )
            .envs(self.sandbox.agent_env())
            .env(TASK_ID_VAR, spec.task_id.to_string())
            .env(RUN_NAME_VAR, &dir.name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|err| {
                RunnerError::Launch(format!("cannot start the run's supervisor (sh): {err}"))
            })?;
        // While this process lives it is the supervisor's parent and must reap it; after a
        // restart the supervisor's new parent does.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    fn watches(&self) -> std::sync::MutexGuard<'_, HashMap<RunHandle, CancellationToken>> {
        // A poisoned map only means a panic elsewhere while holding it; the map is still
        // consistent (single inserts and removes).
        self.watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops the run's process group: SIGTERM, then SIGKILL after the grace.
    async fn stop_group(&self, dir: &RunDir) -> Result<(), RunnerError> {
        let Some(pid) = dir.pid().filter(|_| dir.supervisor_alive()) else {
            return Ok(());
        };
        let pgid = Pid::from_raw(pid);
        signal_group(pgid, Signal::SIGTERM)?;
        let deadline = tokio::time::Instant::now() + self.kill_grace;
        while group_exists(pgid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(CANCEL_POLL).await;
        }
        if group_exists(pgid) {
            signal_group(pgid, Signal::SIGKILL)?;
        }
        Ok(())
    }
}

/// The egress proxies this runner serves end with it, as they would with the server.
impl Drop for ProcessRunner {
    fn drop(&mut self) {
        self.egress_stop.cancel();
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[async_trait]
impl Runner for ProcessRunner {
    async fn launch(&self, spec: LaunchSpec) -> Result<RunHandle, RunnerError> {
        let dir = self.run_dir(&spec.name)?;
        if self.start(&dir, &spec)? {
            tracing::info!(task_id = %spec.task_id, run = %dir.name, "agent launched");
        } else {
            tracing::info!(task_id = %spec.task_id, run = %dir.name, "run launched before; not started again");
        }
        Ok(spec.name)
    }

    async fn status(&self, handle: &RunHandle) -> Result<RunStatus, RunnerError> {
        let dir = self.run_dir(handle)?;
        Ok(tokio::task::spawn_blocking(move || dir.status())
            .await
            .unwrap_or(RunStatus::NotFound))
    }

    async fn watch(
        &self,
        handle: &RunHandle,
        skip: u64,
    ) -> Result<BoxStream<'static, RunnerEvent>, RunnerError> {
        let dir = self.run_dir(handle)?;
        if !dir.exists() {
            return Err(RunnerError::UnknownRun(format!("{handle}: no such run")));
        }
        if self.sandbox.is_bwrap() && dir.exit().is_none() {
            // A run launched by a server before this one: its proxy went with that server.
            egress::ensure(&dir.path, self.egress_stop.clone()).await;
        }
        let stop = self
            .watches()
            .entry(handle.clone())
            .or_default()
            .child_token();
        let receiver = tail::spawn(dir, skip, stop);
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
        let dir = self.run_dir(handle)?;
        self.stop_group(&dir).await?;
        // Also when the agent is already gone: what it started may not be.
        kill_run_processes(&dir.name).await;
        if dir.exists() {
            let _ = dir.record_exit("cancelled");
            tokio::fs::remove_dir_all(&dir.path)
                .await
                .or_else(|err| match err.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(err),
                })
                .map_err(|err| {
                    RunnerError::failed(format!("remove the run folder of {handle}"), err)
                })?;
        }
        self.detach(handle).await?;
        tracing::info!(run = %handle, "run cancelled");
        Ok(())
    }

    async fn list(&self, selector: &BTreeMap<String, String>) -> Result<Vec<RunInfo>, RunnerError> {
        let runs_dir = self.runs_dir.clone();
        let selector = selector.clone();
        tokio::task::spawn_blocking(move || list_runs(&runs_dir, &selector))
            .await
            .map_err(|err| RunnerError::failed("list runs", err))?
    }
}

/// Every run folder under `runs_dir` whose labels include `selector`.
fn list_runs(
    runs_dir: &Path,
    selector: &BTreeMap<String, String>,
) -> Result<Vec<RunInfo>, RunnerError> {
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(RunnerError::failed("read the runs folder", err)),
    };
    let mut runs = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(dir) = RunDir::new(runs_dir, &name) else {
            continue;
        };
        if !dir.exists() {
            continue;
        }
        let labels = dir.record().map(|record| record.labels).unwrap_or_default();
        if selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
        {
            runs.push(RunInfo {
                handle: RunHandle(name),
                labels,
                status: dir.status(),
            });
        }
    }
    runs.sort_by(|a, b| a.handle.cmp(&b.handle));
    Ok(runs)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sandbox_tests;
