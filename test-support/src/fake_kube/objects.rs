//! What the cluster's controllers would write: the run's pod in its states, the Job's
//! conditions. Built with the typed `k8s-openapi` structs, so they are shaped as the
//! real API server sends them.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::{FakeApiServer, Kind};

/// The pod's name for a run, as the Job controller would choose it.
pub fn pod_name(run: &str) -> String {
    format!("{run}-x7k2p")
}

/// A time `secs` seconds ago.
pub fn ago(secs: i64) -> Time {
    Time(Timestamp::now() - SignedDuration::from_secs(secs))
}

/// The run's pod, created at `created`, with the agent container in `agent` (and the
/// init container done).
pub fn pod(run: &str, created: Time, agent: ContainerState) -> Pod {
    let labels = BTreeMap::from([
        ("agent-rs/run".to_string(), run.to_string()),
        ("batch.kubernetes.io/job-name".to_string(), run.to_string()),
    ]);
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(run)),
            labels: Some(labels),
            creation_timestamp: Some(created),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some("Running".to_string()),
            init_container_statuses: Some(vec![container(
                "install-agent",
                terminated(0, "Completed"),
            )]),
            container_statuses: Some(vec![container("agent", agent)]),
            ..PodStatus::default()
        }),
    }
}

/// A pod the scheduler cannot place since `since`.
pub fn unschedulable_pod(run: &str, since: Time) -> Pod {
    let mut pod = pod(run, since.clone(), waiting("ContainerCreating", ""));
    let status = pod.status.as_mut().expect("status");
    status.phase = Some("Pending".to_string());
    status.init_container_statuses = None;
    status.container_statuses = None;
    status.conditions = Some(vec![PodCondition {
        type_: "PodScheduled".to_string(),
        status: "False".to_string(),
        reason: Some("Unschedulable".to_string()),
        message: Some("0/3 nodes are available: 3 Insufficient memory.".to_string()),
        last_transition_time: Some(since),
        ..PodCondition::default()
    }]);
    pod
}

fn container(name: &str, state: ContainerState) -> ContainerStatus {
    ContainerStatus {
        name: name.to_string(),
        image: "img".to_string(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        state: Some(state),
        ..ContainerStatus::default()
    }
}

pub fn running() -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(ago(1)),
        }),
        ..ContainerState::default()
    }
}

pub fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
        }),
        ..ContainerState::default()
    }
}

pub fn terminated(code: i32, reason: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: code,
            reason: Some(reason.to_string()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

impl FakeApiServer {
    /// The kubelet reports `pod`, which carries its Job's template labels (as the Job
    /// controller's pods do).
    pub fn put_pod(&self, pod: &Pod) {
        let mut pod = serde_json::to_value(pod).expect("pod");
        let run = pod["metadata"]["labels"]["agent-rs/run"]
            .as_str()
            .expect("run label");
        if let Some(job) = self.object(Kind::Job, run)
            && let Some(labels) = job["spec"]["template"]["metadata"]["labels"].as_object()
        {
            for (key, value) in labels {
                pod["metadata"]["labels"][key] = value.clone();
            }
        }
        self.put(Kind::Pod, pod);
    }

    /// The Job controller sets a condition (`Complete`, `Failed`) on the run's Job.
    pub fn set_job_condition(&self, run: &str, type_: &str, reason: &str, message: &str) {
        let mut job: Value = self.object(Kind::Job, run).expect("the Job exists");
        let status = JobStatus {
            conditions: Some(vec![JobCondition {
                type_: type_.to_string(),
                status: "True".to_string(),
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        };
        job["status"] = serde_json::to_value(status).expect("status");
        self.put(Kind::Job, job);
    }
}
