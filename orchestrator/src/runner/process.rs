//! The embedded runner: `agent-rs job` as a local child process.
//!
//! The agent starts with a cleared environment (a minimal `PATH`, `HOME`, `LANG` plus the
//! launch spec), so nothing of the server's own environment (its storage keys, say) leaks
//! into the run. It leads its own process group, and every process of the run inherits
//! `AGENT_TASK_ID`, so a cancel (or the agent's exit) kills everything it started, even
//! the commands its shell tool runs in groups of their own. Its stdout is read line by
//! line as JSON events; its stderr goes to a log file per task under the runs folder.
//!
//! The handle is `pid:{pid}:{task_id}`, a string the task row keeps. After a restart this
//! runner has no child to watch, but it can still answer whether the run is alive: the
//! process exists, is not a zombie, and its environment carries `AGENT_TASK_ID={task_id}`
//! (which also guards against a recycled pid). That check reads `/proc`, so liveness
//! across restarts is Linux-only; elsewhere a run this process did not start reads as dead.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use super::{LaunchSpec, RunHandle, Runner, RunnerError, RunnerEvent};
use crate::config::OrchestratorConfig;
use crate::task::TaskId;

/// The environment variable that ties a process to its task (and proves it is ours).
const TASK_ID_VAR: &str = "AGENT_TASK_ID";
/// Longest stdout line taken as an event; longer ones are skipped and logged.
const MAX_EVENT_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Events buffered between the agent's stdout and the watcher.
const EVENT_BUFFER: usize = 256;
/// How often a cancel checks whether the group is gone before escalating to SIGKILL.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// Scans for a run's leftover processes after its agent is gone.
const SWEEP_ROUNDS: usize = 5;
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Runs `{agent_bin} job` as a local process.
#[derive(Debug)]
pub struct ProcessRunner {
    agent_bin: PathBuf,
    runs_dir: PathBuf,
    kill_grace: Duration,
    base_env: BTreeMap<String, String>,
    /// Event streams of runs launched here that nobody watches yet.
    unwatched: Mutex<HashMap<RunHandle, mpsc::Receiver<RunnerEvent>>>,
}

impl ProcessRunner {
    /// `runs_dir` holds one stderr log per task; `kill_grace` is the time between SIGTERM
    /// and SIGKILL on cancel.
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
            unwatched: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_config(config: &OrchestratorConfig) -> Self {
        Self::new(
            config.agent_bin.clone(),
            config.runs_dir(),
            config.worker.kill_grace(),
        )
    }

    /// Where a task's agent stderr goes (appended to across attempts).
    pub fn log_path(&self, task_id: TaskId) -> PathBuf {
        self.runs_dir.join(format!("{task_id}.stderr.log"))
    }

    fn spawn(&self, spec: &LaunchSpec) -> Result<Child, RunnerError> {
        std::fs::create_dir_all(&self.runs_dir).map_err(|err| {
            RunnerError::Launch(format!(
                "cannot create the runs folder {}: {err}",
                self.runs_dir.display()
            ))
        })?;
        let log_path = self.log_path(spec.task_id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|err| {
                RunnerError::Launch(format!(
                    "cannot open the agent log {}: {err}",
                    log_path.display()
                ))
            })?;
        Command::new(&self.agent_bin)
            .arg("job")
            .current_dir(&self.runs_dir)
            .env_clear()
            .envs(&self.base_env)
            .envs(&spec.env)
            .env(TASK_ID_VAR, spec.task_id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .map_err(|err| {
                let bin = self.agent_bin.display();
                if err.kind() == std::io::ErrorKind::NotFound {
                    RunnerError::Launch(format!(
                        "the agent binary `{bin}` was not found; set agent_bin (--agent-bin) to the agent-rs binary"
                    ))
                } else {
                    RunnerError::Launch(format!("cannot start `{bin} job`: {err}"))
                }
            })
    }

    fn unwatched(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<RunHandle, mpsc::Receiver<RunnerEvent>>> {
        // A poisoned map only means a panic elsewhere while holding it; the map is still
        // consistent (single inserts and removes).
        self.unwatched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Runner for ProcessRunner {
    async fn launch(&self, spec: LaunchSpec) -> Result<RunHandle, RunnerError> {
        let mut child = self.spawn(&spec)?;
        let (Some(pid), Some(stdout)) = (
            child.id().and_then(|id| i32::try_from(id).ok()),
            child.stdout.take(),
        ) else {
            return Err(RunnerError::Launch(
                "the agent process exited before it could be tracked".to_string(),
            ));
        };
        let handle = ProcessHandle {
            pid,
            task_id: spec.task_id,
        }
        .to_handle();
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        tokio::spawn(pump(
            child,
            stdout,
            Pid::from_raw(pid),
            events,
            spec.task_id,
        ));
        self.unwatched().insert(handle.clone(), receiver);
        tracing::info!(task_id = %spec.task_id, pid, "agent launched");
        Ok(handle)
    }

    async fn watch(
        &self,
        handle: &RunHandle,
    ) -> Result<BoxStream<'static, RunnerEvent>, RunnerError> {
        let receiver = self.unwatched().remove(handle).ok_or_else(|| {
            RunnerError::UnknownRun(format!(
                "{}: not started by this runner (server restarted?) or already watched",
                handle.0
            ))
        })?;
        Ok(
            futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|event| (event, receiver))
            })
            .boxed(),
        )
    }

    async fn cancel(&self, handle: &RunHandle) -> Result<(), RunnerError> {
        let run = ProcessHandle::parse(handle)?;
        if run.is_alive().await {
            let pgid = Pid::from_raw(run.pid);
            signal_group(pgid, Signal::SIGTERM)?;
            let deadline = tokio::time::Instant::now() + self.kill_grace;
            while group_exists(pgid) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(CANCEL_POLL).await;
            }
            if group_exists(pgid) {
                signal_group(pgid, Signal::SIGKILL)?;
            }
            tracing::info!(task_id = %run.task_id, pid = run.pid, "agent run cancelled");
        }
        // Also when the agent is already gone: what it started may not be.
        kill_task_processes(run.task_id).await;
        Ok(())
    }

    async fn is_alive(&self, handle: &RunHandle) -> Result<bool, RunnerError> {
        Ok(ProcessHandle::parse(handle)?.is_alive().await)
    }
}

/// A run handle, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcessHandle {
    pid: i32,
    task_id: TaskId,
}

impl ProcessHandle {
    fn to_handle(self) -> RunHandle {
        RunHandle(format!("pid:{}:{}", self.pid, self.task_id))
    }

    fn parse(handle: &RunHandle) -> Result<Self, RunnerError> {
        let bad = || {
            RunnerError::UnknownRun(format!(
                "`{}` is not a process runner handle (expected pid:PID:TASK_ID)",
                handle.0
            ))
        };
        let mut parts = handle.0.splitn(3, ':');
        let (Some("pid"), Some(pid), Some(task_id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let pid: i32 = pid.parse().map_err(|_| bad())?;
        if pid <= 1 {
            return Err(bad());
        }
        let task_id = task_id.parse().map_err(|_| bad())?;
        Ok(Self { pid, task_id })
    }

    /// The process exists, is not a zombie, and runs this task.
    async fn is_alive(&self) -> bool {
        let Self { pid, task_id } = *self;
        tokio::task::spawn_blocking(move || runs_task(pid, task_id))
            .await
            .unwrap_or(false)
    }
}

/// Whether `pid` is a live (not zombie) process carrying `AGENT_TASK_ID={task_id}`.
fn runs_task(pid: i32, task_id: TaskId) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    if matches!(process_state(&stat), None | Some('Z' | 'X' | 'x')) {
        return false;
    }
    let Ok(environ) = std::fs::read(proc_dir.join("environ")) else {
        return false;
    };
    let wanted = format!("{TASK_ID_VAR}={task_id}");
    environ
        .split(|byte| *byte == 0)
        .any(|entry| entry == wanted.as_bytes())
}

/// Kills every process left that carries the task's id in its environment.
///
/// Signalling the agent's process group is not enough: the agent's shell tool starts
/// each command in a process group of its own (to time it out as a whole), and an agent
/// stopped by a signal does not get to clean those up, so `sleep 600` or a test server
/// would outlive the run. Every one of them inherits `AGENT_TASK_ID`, so they are found
/// by their environment (Linux `/proc`; elsewhere only the agent's group is killed). A
/// few rounds catch processes forked while the previous round was signalling.
async fn kill_task_processes(task_id: TaskId) {
    let sweep = tokio::task::spawn_blocking(move || {
        for _ in 0..SWEEP_ROUNDS {
            let pids = task_processes(task_id);
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                tracing::debug!(%task_id, %pid, "killing a leftover process of the run");
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    });
    if let Err(err) = sweep.await {
        tracing::warn!(%task_id, error = %err, "looking for the run's leftover processes failed");
    }
}

/// The live processes running `task_id`, never this process itself.
fn task_processes(task_id: TaskId) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| u32::try_from(*pid).is_ok_and(|pid| pid != own))
        .filter(|pid| runs_task(*pid, task_id))
        .map(Pid::from_raw)
        .collect()
}

/// The state letter of a `/proc/{pid}/stat` line (`pid (comm) S ...`; `comm` may hold
/// spaces and parentheses, so it is found after the last `)`).
fn process_state(stat: &str) -> Option<char> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.trim_start().chars().next()
}

fn group_exists(pgid: Pid) -> bool {
    killpg(pgid, None).is_ok()
}

fn signal_group(pgid: Pid, signal: Signal) -> Result<(), RunnerError> {
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(err) => Err(RunnerError::Other(format!(
            "cannot send {signal} to agent process group {pgid}: {err}"
        ))),
    }
}

/// Reads the agent's stdout into events until the run is over, then reports the exit.
///
/// When the agent itself exits, whatever it left running is killed: the run is the whole
/// group (and every process carrying its task id), and a straggler holding stdout open
/// would otherwise keep the run from ending.
async fn pump(
    mut child: Child,
    stdout: ChildStdout,
    pgid: Pid,
    events: mpsc::Sender<RunnerEvent>,
    task_id: TaskId,
) {
    let mut lines = FramedRead::new(
        stdout,
        LinesCodec::new_with_max_length(MAX_EVENT_LINE_BYTES),
    );
    let mut watcher_gone = false;
    let mut exit = None;
    loop {
        tokio::select! {
            line = lines.next() => match line {
                Some(Ok(line)) => {
                    if let Some(event) = parse_event(&line, task_id) {
                        watcher_gone = watcher_gone || events.send(event).await.is_err();
                    }
                }
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    tracing::warn!(%task_id, "agent printed a line over {MAX_EVENT_LINE_BYTES} bytes; skipped");
                }
                Some(Err(LinesCodecError::Io(err))) => {
                    tracing::warn!(%task_id, error = %err, "reading the agent's output failed");
                    break;
                }
                None => break,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status);
                let _ = signal_group(pgid, Signal::SIGKILL);
            }
        }
    }
    let status = match exit {
        Some(status) => status,
        None => child.wait().await,
    };
    let code = match status {
        Ok(status) => status.code(),
        Err(err) => {
            tracing::warn!(%task_id, error = %err, "lost track of the agent process");
            None
        }
    };
    let _ = signal_group(pgid, Signal::SIGKILL);
    kill_task_processes(task_id).await;
    tracing::info!(%task_id, ?code, "agent exited");
    if !watcher_gone {
        let _ = events.send(RunnerEvent::Exited { code }).await;
    }
}

/// One stdout line as an event; anything but a JSON object is logged and skipped.
fn parse_event(line: &str, task_id: TaskId) -> Option<RunnerEvent> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(value) if value.is_object() => Some(RunnerEvent::AgentEvent(value)),
        _ => {
            let shown: String = line.chars().take(200).collect();
            tracing::debug!(%task_id, line = %shown, "agent printed a line that is not a JSON event; skipped");
            None
        }
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
