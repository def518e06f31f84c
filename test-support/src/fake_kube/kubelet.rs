//! A kubelet for the fake API server: every Job that appears gets its pod, whose
//! containers run as local processes, so a service whose runner talks to the fake cluster
//! runs its agents for real (their model, their signed URLs, their outputs).
//!
//! What it does is what a node does for the runner's Jobs: an image it does not have
//! leaves the pod waiting in `ErrImagePull`; otherwise the init container runs to its end,
//! then the main container, whose stdout and stderr become the pod's log; the pod's
//! container states follow, and the Job controller's condition (`Complete` or `Failed`)
//! is set when the main container ends. Environment variables come from the container's
//! `env`, `secretKeyRef`s read from the stored Secret (the container waits for it, as a
//! kubelet does). Each `emptyDir` is a folder of its own, and every path in a command,
//! the working directory and the environment under a mount is moved into it; the agent
//! image's `/agent-rs` is the binary given at the start. A pod deleted while it runs
//! (the Job deleted with propagation) has its process killed.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinSet;

use super::objects::{ago, pod, pod_name, running, terminated, waiting};
use super::{FakeApiServer, Kind};

/// The agent image's own binary, as its init container names it.
const AGENT_IMAGE_BINARY: &str = "/agent-rs";
/// How long a container waits for the Secret its environment refers to.
const SECRET_WAIT: Duration = Duration::from_secs(30);

/// The running kubelet; dropping it kills every container it runs.
pub struct FakeKubelet {
    pods: tokio::task::JoinHandle<()>,
    _root: tempfile::TempDir,
}

/// How a pod ended, for tests that look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodOutcome {
    Exited(i32),
    Stuck(String),
    Deleted,
}

struct Node {
    server: FakeApiServer,
    agent: PathBuf,
    images: HashSet<String>,
    root: PathBuf,
}

impl FakeKubelet {
    /// Runs the pods of `server`'s Jobs; `agent` is the agent image's `/agent-rs`,
    /// `images` the images the node can pull (any other fails its pull).
    pub fn start(server: &FakeApiServer, agent: PathBuf, images: &[&str]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let node = Arc::new(Node {
            server: server.clone(),
            agent,
            images: images.iter().map(|image| image.to_string()).collect(),
            root: root.path().to_path_buf(),
        });
        let pods = tokio::spawn(node.run_pods());
        Self { pods, _root: root }
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.pods.abort();
    }
}

/// One container of the pod spec, ready to run here.
struct Container {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    dir: PathBuf,
}

impl Node {
    /// Starts a pod for every Job that appears, for as long as the kubelet lives.
    async fn run_pods(self: Arc<Self>) {
        let mut started = HashSet::new();
        let mut pods = JoinSet::new();
        loop {
            let fresh = self
                .server
                .wait_until(|server| {
                    let fresh: Vec<String> = server
                        .names(Kind::Job)
                        .into_iter()
                        .filter(|name| !started.contains(name))
                        .collect();
                    (!fresh.is_empty()).then_some(fresh)
                })
                .await;
            for job in fresh {
                started.insert(job.clone());
                let node = self.clone();
                pods.spawn(async move { node.run_pod(&job).await });
            }
        }
    }

    async fn run_pod(&self, run: &str) -> PodOutcome {
        let job = self.server.object(Kind::Job, run).unwrap();
        let spec = &job["spec"]["template"]["spec"];
        let created = ago(0);
        let init = &spec["initContainers"][0];
        let main = spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|container| container["name"] == "agent")
            .unwrap();
        for container in [init, main] {
            let image = container["image"].as_str().unwrap_or_default();
            if !self.images.contains(image) {
                let message = format!("failed to pull image \"{image}\": not found");
                self.server.put_pod(&pod(
                    run,
                    created.clone(),
                    waiting("ErrImagePull", &message),
                ));
                return PodOutcome::Stuck("ErrImagePull".to_string());
            }
        }
        let dir = self.root.join(run);
        let mounts = self.volumes(spec, &dir);
        self.server
            .put_pod(&pod(run, created.clone(), waiting("PodInitializing", "")));
        let install = match self.container(init, &mounts, &dir).await {
            Ok(install) => install,
            Err(stuck) => return stuck,
        };
        let agent = match self.container(main, &mounts, &dir).await {
            Ok(agent) => agent,
            Err(stuck) => return stuck,
        };
        let code = match self.execute(install, None).await {
            Some(code) => code,
            None => return PodOutcome::Deleted,
        };
        if code != 0 {
            return self.end(run, created, code, "init container failed");
        }
        self.server.put_pod(&pod(run, created.clone(), running()));
        let log = pod_name(run);
        let Some(code) = self.execute(agent, Some(log.as_str())).await else {
            return PodOutcome::Deleted;
        };
        self.server.close_log(&log);
        self.end(run, created, code, "the agent container ended")
    }

    /// The container ended with `code`: its pod and Job say so, as the kubelet and the
    /// Job controller would (unless the Job is gone meanwhile).
    fn end(
        &self,
        run: &str,
        created: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
        code: i32,
        message: &str,
    ) -> PodOutcome {
        if self.server.object(Kind::Job, run).is_none() {
            return PodOutcome::Deleted;
        }
        let reason = if code == 0 { "Completed" } else { "Error" };
        self.server
            .put_pod(&pod(run, created, terminated(code, reason)));
        if code == 0 {
            self.server
                .set_job_condition(run, "Complete", "CompletionsReached", message);
        } else {
            self.server
                .set_job_condition(run, "Failed", "BackoffLimitExceeded", message);
        }
        PodOutcome::Exited(code)
    }

    /// A folder per `emptyDir`, by mount path (longest first, so nested mounts win).
    fn volumes(&self, spec: &Value, dir: &Path) -> Vec<(String, PathBuf)> {
        let mut mounts = Vec::new();
        let containers = spec["initContainers"]
            .as_array()
            .into_iter()
            .chain(spec["containers"].as_array())
            .flatten();
        for container in containers {
            for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                let volume = dir.join(mount["name"].as_str().unwrap());
                std::fs::create_dir_all(&volume).unwrap();
                mounts.push((mount["mountPath"].as_str().unwrap().to_string(), volume));
            }
        }
        mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        mounts.dedup();
        mounts
    }

    /// The container's command, environment and working directory on this machine; a
    /// Secret that never comes leaves the pod in `CreateContainerConfigError`.
    async fn container(
        &self,
        container: &Value,
        mounts: &[(String, PathBuf)],
        dir: &Path,
    ) -> Result<Container, PodOutcome> {
        let local = |path: &str| -> String {
            for (mount, folder) in mounts {
                if let Some(rest) = path.strip_prefix(mount.as_str())
                    && (rest.is_empty() || rest.starts_with('/'))
                {
                    return format!("{}{rest}", folder.display());
                }
            }
            if path == AGENT_IMAGE_BINARY {
                return self.agent.display().to_string();
            }
            path.to_string()
        };
        let argv: Vec<String> = container["command"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(container["args"].as_array().into_iter().flatten())
            .map(|arg| local(arg.as_str().unwrap()))
            .collect();
        let mut env = BTreeMap::new();
        for var in container["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().unwrap().to_string();
            let value = match var["value"].as_str() {
                Some(value) => local(value),
                None => self.secret_value(&var["valueFrom"]["secretKeyRef"]).await?,
            };
            env.insert(name, value);
        }
        let dir = container["workingDir"]
            .as_str()
            .map_or_else(|| dir.to_path_buf(), |path| PathBuf::from(local(path)));
        Ok(Container { argv, env, dir })
    }

    async fn secret_value(&self, reference: &Value) -> Result<String, PodOutcome> {
        let name = reference["name"].as_str().unwrap();
        let key = reference["key"].as_str().unwrap();
        let secret = tokio::time::timeout(
            SECRET_WAIT,
            self.server
                .wait_until(|server| server.object(Kind::Secret, name)),
        )
        .await;
        let value = secret
            .ok()
            .and_then(|secret| secret["data"][key].as_str().map(str::to_string));
        let Some(value) = value else {
            let run = reference["name"].as_str().unwrap();
            let message = format!("secret \"{name}\" (key {key}) not found");
            self.server.put_pod(&pod(
                run,
                ago(0),
                waiting("CreateContainerConfigError", &message),
            ));
            return Err(PodOutcome::Stuck("CreateContainerConfigError".to_string()));
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap();
        Ok(String::from_utf8(bytes).unwrap())
    }

    /// Runs `container` to its end: its exit code, or `None` when its pod was deleted
    /// first (it is killed). With `log`, its output lines become that pod's log.
    async fn execute(&self, container: Container, log: Option<&str>) -> Option<i32> {
        let mut child = tokio::process::Command::new(&container.argv[0])
            .args(&container.argv[1..])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&container.env)
            .current_dir(&container.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {:?}: {err}", container.argv));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let pump = async {
            tokio::join!(self.pump(stdout, log), self.pump(stderr, log));
        };
        let watched = log.map(str::to_string);
        let deleted = async {
            match &watched {
                Some(pod) => {
                    self.server
                        .wait_until(|server| server.object(Kind::Pod, pod).is_none().then_some(()))
                        .await
                }
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            (status, ()) = async { tokio::join!(child.wait(), pump) } => Some(status.unwrap()),
            () = deleted => None,
        };
        match ended {
            Some(status) => Some(status.code().unwrap_or(137)),
            None => {
                let _ = child.kill().await;
                None
            }
        }
    }

    async fn pump(&self, output: impl AsyncRead + Unpin, log: Option<&str>) {
        let mut lines = BufReader::new(output).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(pod) = log {
                self.server.print(pod, &line);
            }
        }
    }
}
