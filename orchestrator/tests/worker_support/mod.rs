//! The embedded services over a temporary data folder, a fake agent, and helpers to
//! submit tasks and wait for them, for the worker and reconciler tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod faults;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use orchestrator::blob::generate_signing_key;
use orchestrator::reconciler::Reconciler;
use orchestrator::services::EmbeddedParts;
use orchestrator::worker::Worker;
use orchestrator::{
    InProcessQueue, InputSource, MemoryStatusCache, NewTask, OrchestratorConfig, Services,
    SqliteTaskStore, Task, TaskId, TaskLimits, TaskMessage, TaskOps,
};
use tokio_util::sync::CancellationToken;

/// Longest any test waits for a task to settle before failing (a hang guard, not a
/// speed expectation).
pub const SETTLE: Duration = Duration::from_secs(60);

/// Where the fake agent, the database and the blobs live.
pub struct DataDir {
    pub dir: tempfile::TempDir,
}

impl DataDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn blob_root(&self) -> PathBuf {
        self.path().join("blobs")
    }

    pub fn agent_path(&self) -> PathBuf {
        self.path().join("fake-agent")
    }

    /// Writes the fake `agent-rs` (a bash script run as `{script} job`). Its body may call
    /// `result JSON` to store `result.json` where the agent's PUT would have put it, and
    /// `touch_out NAME TEXT` for any other output.
    pub fn write_agent(&self, body: &str) {
        let script = format!(
            "#!/bin/bash\n\
             OUT='{blobs}/tasks/'\"$AGENT_TASK_ID\"'/outputs'\n\
             result() {{ mkdir -p \"$OUT\" && printf '%s' \"$1\" > \"$OUT/result.json\"; }}\n\
             touch_out() {{ mkdir -p \"$OUT\" && printf '%s' \"$2\" > \"$OUT/$1\"; }}\n\
             {body}\n",
            blobs = self.blob_root().display()
        );
        let path = self.agent_path();
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The embedded services over one data folder.
pub struct Harness {
    pub services: Services,
    pub store: SqliteTaskStore,
    pub queue: InProcessQueue,
    pub cache: MemoryStatusCache,
}

/// A config for tests: the data folder, the fake agent, quick polls; `tweak` adjusts it.
pub fn test_config(
    data: &DataDir,
    tweak: impl FnOnce(&mut OrchestratorConfig),
) -> OrchestratorConfig {
    let mut config = OrchestratorConfig {
        data_dir: data.path().to_path_buf(),
        agent_bin: data.agent_path(),
        ..OrchestratorConfig::default()
    };
    config.worker.cancel_poll_ms = 50;
    config.worker.kill_grace_secs = 2;
    config.worker.lease_secs = 1;
    config.workspace.allow_file_git_urls = true;
    // The fake agent lives in the data folder and writes its outputs straight into the
    // blob folder, which the runner's sandbox rightly hides from agents (the sandbox's
    // own tests are in the runner's `sandbox_tests`, and the API's end-to-end tests run
    // the real agent in it).
    config.sandbox.mode = orchestrator::runner::process::RunSandboxMode::Off;
    tweak(&mut config);
    config
}

impl Harness {
    /// Opens (or reopens, after a simulated crash) the services over the config's data
    /// folder.
    pub async fn open(config: OrchestratorConfig) -> Self {
        Self::open_with(config, |_| {}).await
    }

    /// As [`Harness::open`], with `wrap` replacing some of the parts (by fault-injecting
    /// wrappers around them, say).
    pub async fn open_with(config: OrchestratorConfig, wrap: impl FnOnce(&mut Services)) -> Self {
        let (mut services, parts) = Services::embedded(
            config,
            "http://127.0.0.1:9",
            generate_signing_key().unwrap(),
        )
        .await
        .unwrap();
        wrap(&mut services);
        Self::from_parts(services, parts)
    }

    /// Wraps services built elsewhere (the real-agent test serves its blobs itself).
    pub fn from_parts(services: Services, parts: EmbeddedParts) -> Self {
        let EmbeddedParts {
            store,
            queue,
            cache,
            ..
        } = parts;
        Self {
            services,
            store,
            queue,
            cache,
        }
    }

    /// Starts the worker; cancel the token to shut it down.
    pub fn start_worker(&self) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let shutdown = CancellationToken::new();
        let handle = Worker::new(self.services.clone()).spawn(shutdown.clone());
        (shutdown, handle)
    }

    pub fn reconciler(&self) -> Reconciler {
        Reconciler::new(self.services.clone())
    }

    /// Stores a task (`QUEUED`, with its outbox entry) without sending its message: as
    /// if its creator died right after the commit.
    pub async fn create(&self, input: InputSource, limits: TaskLimits) -> Task {
        let (task, _) = self
            .services
            .store
            .create(new_task(input, limits))
            .await
            .unwrap();
        task
    }

    /// Submits a task as the API does.
    pub async fn submit(&self, input: InputSource, limits: TaskLimits) -> Task {
        let (task, _) = TaskOps::new(&self.services)
            .submit(new_task(input, limits))
            .await
            .unwrap();
        task
    }

    pub async fn enqueue(&self, id: TaskId) {
        self.services
            .queue
            .enqueue(TaskMessage { task_id: id })
            .await
            .unwrap();
    }

    /// Uploads a zip of `files` (as the API does) and submits a task for it.
    pub async fn submit_zip(&self, files: &[(&str, &str)], limits: TaskLimits) -> Task {
        let input = self.upload_zip(files).await;
        self.submit(input, limits).await
    }

    /// Uploads a zip of `files` as the API does; the input naming it.
    pub async fn upload_zip(&self, files: &[(&str, &str)]) -> InputSource {
        let key = format!("uploads/{}.zip", uuid::Uuid::new_v4());
        self.services
            .blobs
            .put_bytes(&key, zip_of(files))
            .await
            .unwrap();
        InputSource::Zip {
            zip_name: "code.zip".to_string(),
            zip_key: key,
        }
    }

    pub async fn get(&self, id: TaskId) -> Task {
        self.services.store.get(id).await.unwrap().unwrap()
    }

    /// The task's event stream, from the start until it closes (the task reached a
    /// terminal status), as JSON values.
    pub async fn events_until_closed(&self, id: TaskId) -> Vec<serde_json::Value> {
        let stream = self.services.cache.subscribe(id, 0).await.unwrap();
        let events = tokio::time::timeout(SETTLE, stream.collect::<Vec<_>>())
            .await
            .expect("the task's event stream never closed");
        events
            .into_iter()
            .map(|event| event.unwrap().data)
            .collect()
    }

    /// Waits for the task's first event of type `kind` and returns it.
    pub async fn first_event(&self, id: TaskId, kind: &str) -> serde_json::Value {
        let mut stream = self.services.cache.subscribe(id, 0).await.unwrap();
        tokio::time::timeout(SETTLE, async {
            while let Some(event) = stream.next().await {
                let event = event.unwrap();
                if event.data["type"] == kind {
                    return event.data;
                }
            }
            panic!("stream closed before a `{kind}` event")
        })
        .await
        .expect("no such event in time")
    }

    /// Waits until the task reaches a terminal status, running reconciler passes (the
    /// bounded poll stands for the reconciler's interval).
    pub async fn reconcile_until_terminal(&self, reconciler: &Reconciler, id: TaskId) -> Task {
        tokio::time::timeout(SETTLE, async {
            loop {
                reconciler.pass().await;
                let task = self.get(id).await;
                if task.status.is_terminal() {
                    return task;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the reconciler never settled the task")
    }
}

/// What the harness submits: alice's task with `input` and `limits`.
pub fn new_task(input: InputSource, limits: TaskLimits) -> NewTask {
    NewTask {
        owner: "alice".to_string(),
        input,
        description: "fix the failing test".to_string(),
        target_file: None,
        model: None,
        limits,
        idempotency_key: None,
        pull_request: None,
        best_of: Default::default(),
        setup: None,
    }
}

/// The statuses a task's stream announced, in order.
pub fn statuses(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["type"] == "status")
        .map(|event| event["status"].as_str().unwrap().to_string())
        .collect()
}

/// A zip archive holding `files` (name, content).
pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Whether a pid names a live (not zombie) process.
pub fn pid_running(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = &stat[stat.rfind(')')? + 1..];
            after.trim_start().chars().next()
        })
        .is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
}

/// Waits (bounded) for a killed process to be gone.
pub async fn gone_eventually(pid: i64) -> bool {
    for _ in 0..500 {
        if !pid_running(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Live processes whose environment says they run `task_id` (the agent, its supervisor,
/// and whatever they started).
pub fn processes_of_task(task_id: TaskId) -> Vec<i32> {
    let wanted = format!("AGENT_TASK_ID={task_id}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if !pid_running(i64::from(pid)) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == wanted.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// A host crash, for one task: every process of its run dies at once.
pub fn kill_task_processes(task_id: TaskId) {
    for pid in processes_of_task(task_id) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
