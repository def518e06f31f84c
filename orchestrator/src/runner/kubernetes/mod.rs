//! The cluster runner: each run is a Kubernetes Job, watched through the API server.
//!
//! A run is a Job named by [`crate::runner::run_name`] plus a Secret of the same name
//! owned by the Job ([`manifest`]). Launch creates the Job, then the Secret with the Job
//! as owner; both creates treat "already exists" as success, so launching a name again
//! (after a crash anywhere in between) finishes what the first launch began and starts
//! nothing twice. The pod cannot start its agent before the Secret exists (its
//! environment refers to it), and the Secret never exists without its owner.
//!
//! Status and watch read the cluster, never this process's memory, so any worker can
//! re-attach to a run after a restart ([`state`] decides, [`follow`] streams). Cancel
//! deletes the Job with background propagation: the default for Jobs leaves the pod
//! running. What the runner asks of the API server is exactly [`API_CALLS`]; the Role in
//! `deploy/` grants that and nothing more.

mod follow;
pub mod manifest;
mod settings;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tokio_util::sync::CancellationToken;

pub use self::manifest::LABEL_RUN;
pub use self::settings::KubeSettings;
use super::{LaunchSpec, RunHandle, RunInfo, RunStatus, Runner, RunnerError, RunnerEvent};
use crate::task::now_ms;

/// Every (verb, resource) the runner uses, in the agents' namespace: what its Role must
/// grant. The scenario tests check the runner makes these calls and no others.
pub const API_CALLS: &[(&str, &str)] = &[
    ("create", "jobs"),
    ("get", "jobs"),
    ("list", "jobs"),
    ("watch", "jobs"),
    ("delete", "jobs"),
    ("create", "secrets"),
    ("list", "pods"),
    ("watch", "pods"),
    ("get", "pods/log"),
];

/// Runs `agent-rs job` as Kubernetes Jobs in one namespace.
pub struct KubeRunner {
    client: Client,
    settings: KubeSettings,
    /// The watches this process follows, per run, so `detach` can end them.
    watches: Mutex<HashMap<RunHandle, CancellationToken>>,
}

impl std::fmt::Debug for KubeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRunner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KubeRunner {
    /// A runner over `client` (in a pod: the service account's in-cluster config).
    pub fn new(client: Client, settings: KubeSettings) -> Self {
        Self {
            client,
            settings,
            watches: Mutex::new(HashMap::new()),
        }
    }

    /// A runner with the client the environment configures (in-cluster service account,
    /// else `KUBECONFIG` / `~/.kube/config`).
    pub async fn from_environment(settings: KubeSettings) -> Result<Self, RunnerError> {
        let client = Client::try_default()
            .await
            .map_err(|err| RunnerError::failed("configure the Kubernetes client", err))?;
        Ok(Self::new(client, settings))
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.settings.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.settings.namespace)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.settings.namespace)
    }

    fn watches(&self) -> std::sync::MutexGuard<'_, HashMap<RunHandle, CancellationToken>> {
        // A poisoned map only means a panic elsewhere while holding it; single inserts
        // and removes leave it consistent.
        self.watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The Job of `handle`, `None` when there is none.
    async fn job(&self, handle: &RunHandle) -> Result<Option<Job>, RunnerError> {
        self.jobs()
            .get_opt(&handle.0)
            .await
            .map_err(|err| api_error(format!("read the Job {handle}"), err))
    }

    /// The run's pod: the newest one, though `backoffLimit: 0` makes at most one.
    async fn pod(&self, handle: &RunHandle) -> Result<Option<Pod>, RunnerError> {
        let params = ListParams::default().labels(&format!("{LABEL_RUN}={handle}"));
        let pods = self
            .pods()
            .list(&params)
            .await
            .map_err(|err| api_error(format!("list the pods of {handle}"), err))?;
        Ok(newest(pods.items))
    }

    /// Creates the Job, or finds the one a previous launch created.
    async fn create_job(&self, spec: &LaunchSpec) -> Result<Job, RunnerError> {
        let job = manifest::job(spec, &self.settings);
        match self.jobs().create(&PostParams::default(), &job).await {
            Ok(job) => {
                tracing::info!(task_id = %spec.task_id, run = %spec.name, "agent Job created");
                Ok(job)
            }
            Err(err) if status_code(&err) == Some(409) => {
                tracing::info!(task_id = %spec.task_id, run = %spec.name, "Job created before; not started again");
                self.job(&spec.name).await?.ok_or_else(|| {
                    RunnerError::Launch(format!("the Job {} exists and is gone", spec.name))
                })
            }
            Err(err) => Err(launch_error(format!("create the Job {}", spec.name), err)),
        }
    }
}

#[async_trait]
impl Runner for KubeRunner {
    async fn launch(&self, spec: LaunchSpec) -> Result<RunHandle, RunnerError> {
        let job = self.create_job(&spec).await?;
        let uid = job.metadata.uid.as_deref().ok_or_else(|| {
            RunnerError::Launch(format!("the API server gave the Job {} no uid", spec.name))
        })?;
        if !spec.secret_env.is_empty() {
            let secret = manifest::secret(&spec, &self.settings, uid);
            match self.secrets().create(&PostParams::default(), &secret).await {
                Ok(_) => {}
                Err(err) if status_code(&err) == Some(409) => {}
                // The Job waits for its Secret: launching the name again creates it.
                Err(err) => {
                    return Err(launch_error(
                        format!("create the Secret of {}", spec.name),
                        err,
                    ));
                }
            }
        }
        Ok(spec.name)
    }

    async fn status(&self, handle: &RunHandle) -> Result<RunStatus, RunnerError> {
        let Some(job) = self.job(handle).await? else {
            return Ok(RunStatus::NotFound);
        };
        let pod = self.pod(handle).await?;
        Ok(state::verdict(&job, pod.as_ref(), now_ms(), self.settings.stuck_after()).status)
    }

    async fn watch(
        &self,
        handle: &RunHandle,
        skip: u64,
    ) -> Result<BoxStream<'static, RunnerEvent>, RunnerError> {
        if self.job(handle).await?.is_none() {
            return Err(RunnerError::UnknownRun(format!("{handle}: no such Job")));
        }
        let stop = self
            .watches()
            .entry(handle.clone())
            .or_default()
            .child_token();
        let receiver = follow::spawn(
            follow::Target {
                jobs: self.jobs(),
                pods: self.pods(),
                name: handle.0.clone(),
                stuck_after: self.settings.stuck_after(),
            },
            skip,
            stop,
        );
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
        delete_job(&self.jobs(), &handle.0).await?;
        self.detach(handle).await?;
        tracing::info!(run = %handle, "run cancelled");
        Ok(())
    }

    async fn list(&self, selector: &BTreeMap<String, String>) -> Result<Vec<RunInfo>, RunnerError> {
        let selector = selector
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",");
        let params = ListParams::default().labels(&selector);
        let jobs = self
            .jobs()
            .list(&params)
            .await
            .map_err(|err| api_error("list Jobs", err))?;
        if jobs.items.is_empty() {
            return Ok(Vec::new());
        }
        // The pods carry their Job's labels: one list serves every Job.
        let mut pods: HashMap<String, Vec<Pod>> = HashMap::new();
        let listed = self
            .pods()
            .list(&params)
            .await
            .map_err(|err| api_error("list the Jobs' pods", err))?;
        for pod in listed.items {
            if let Some(run) = pod.metadata.labels.as_ref().and_then(|l| l.get(LABEL_RUN)) {
                pods.entry(run.clone()).or_default().push(pod);
            }
        }
        let now = now_ms();
        let mut runs: Vec<RunInfo> = jobs
            .items
            .into_iter()
            .filter_map(|job| {
                let name = job.metadata.name.clone()?;
                let pod = newest(pods.remove(&name).unwrap_or_default());
                let status = state::verdict(&job, pod.as_ref(), now, self.settings.stuck_after());
                Some(RunInfo {
                    handle: RunHandle(name),
                    labels: job.metadata.labels.clone().unwrap_or_default(),
                    status: status.status,
                })
            })
            .collect();
        runs.sort_by(|a, b| a.handle.cmp(&b.handle));
        Ok(runs)
    }
}

/// Deletes a Job and, in the background, its pods; the garbage collector takes its
/// Secret. Gone already is fine.
async fn delete_job(jobs: &Api<Job>, name: &str) -> Result<(), RunnerError> {
    match jobs.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(err) if status_code(&err) == Some(404) => Ok(()),
        Err(err) => Err(api_error(format!("delete the Job {name}"), err)),
    }
}

fn newest(pods: Vec<Pod>) -> Option<Pod> {
    pods.into_iter()
        .max_by_key(|pod| pod.metadata.creation_timestamp.clone())
}

/// The HTTP status of an error the API server answered with.
fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// An API error as a runner error: transient when the server could not be reached, was
/// overloaded or failed inside.
fn api_error(doing: impl Into<String>, err: kube::Error) -> RunnerError {
    let transient = match &err {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::Service(_) | kube::Error::HyperError(_) | kube::Error::ReadEvents(_) => true,
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

/// Like [`api_error`], but a refusal (the object is invalid, the namespace is missing)
/// is a launch error, which retrying does not fix.
fn launch_error(doing: String, err: kube::Error) -> RunnerError {
    match api_error(doing.clone(), err) {
        RunnerError::Failed { source, .. } => {
            RunnerError::Launch(format!("cannot {doing}: {source}"))
        }
        other => other,
    }
}
