//! Where a run is, read from its Job and its pod: a pure function, so the status call,
//! the watch and the tests agree on every case.
//!
//! Kubernetes says "over" in more than one way, and says nothing at all about a pod that
//! will never start: a Job's `Complete` or `Failed` condition (a failed Job never
//! satisfies "completed", so both are read), the agent container's terminated state
//! (which can arrive before the Job's condition), and a pod stuck waiting on an image, a
//! container setting or a node, which Kubernetes leaves pending forever. Past the
//! configured limit such a pod ends the run with the reason Kubernetes gave.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::manifest::{AGENT_CONTAINER, INSTALL_CONTAINER};
use crate::runner::RunStatus;

/// Container waiting reasons that do not go away on their own.
const STUCK_REASONS: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// A run's status, and when it must be looked at again even if nothing changes (a pod
/// that is stuck but not yet past the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: RunStatus,
    /// Milliseconds since the epoch.
    pub recheck_at_ms: Option<i64>,
    /// The run ended because its pod was stuck: the Job must be deleted, Kubernetes
    /// would keep it forever.
    pub stuck: bool,
}

impl Verdict {
    fn status(status: RunStatus) -> Self {
        Self {
            status,
            recheck_at_ms: None,
            stuck: false,
        }
    }
}

/// The verdict for `job` and its pod (if one exists yet) at `now_ms`.
pub fn verdict(job: &Job, pod: Option<&Pod>, now_ms: i64, stuck_after: Duration) -> Verdict {
    let agent = pod.and_then(|pod| container_status(pod, AGENT_CONTAINER, false));
    let agent_code = agent.and_then(terminated_code);
    if let Some((kind, reason)) = job_condition(job) {
        let status = if kind == Ended::Succeeded {
            RunStatus::Exited {
                code: agent_code.or(Some(0)),
                reason: "completed".to_string(),
            }
        } else {
            RunStatus::Exited {
                code: agent_code,
                reason,
            }
        };
        return Verdict::status(status);
    }
    let Some(pod) = pod else {
        return Verdict::status(RunStatus::Pending);
    };
    if let Some(state) = agent
        .and_then(|status| status.state.as_ref())
        .and_then(|state| state.terminated.as_ref())
    {
        // Worded as the Job's `Complete` condition would be, whichever is seen first.
        let reason = match (state.exit_code, &state.reason) {
            (0, _) => "completed".to_string(),
            (_, Some(reason)) => reason.clone(),
            (_, None) => "terminated".to_string(),
        };
        return Verdict::status(RunStatus::Exited {
            code: Some(state.exit_code),
            reason,
        });
    }
    if let Some(state) = container_status(pod, INSTALL_CONTAINER, true)
        .and_then(|status| status.state.as_ref())
        .and_then(|state| state.terminated.as_ref())
        .filter(|state| state.exit_code != 0)
    {
        return Verdict::status(RunStatus::Exited {
            code: None,
            reason: format!(
                "the agent image's install step failed (exit code {}): {}",
                state.exit_code,
                state.message.as_deref().unwrap_or("no message")
            ),
        });
    }
    if let Some((since_ms, reason)) = stuck(pod) {
        let limit = i64::try_from(stuck_after.as_millis()).unwrap_or(i64::MAX);
        let fail_at = since_ms.saturating_add(limit);
        if now_ms >= fail_at {
            return Verdict {
                status: RunStatus::Exited {
                    code: None,
                    reason: format!("the agent's pod is stuck: {reason}"),
                },
                recheck_at_ms: None,
                stuck: true,
            };
        }
        return Verdict {
            status: RunStatus::Pending,
            recheck_at_ms: Some(fail_at),
            stuck: false,
        };
    }
    let running = agent
        .and_then(|status| status.state.as_ref())
        .is_some_and(|state| state.running.is_some());
    Verdict::status(if running {
        RunStatus::Running
    } else {
        RunStatus::Pending
    })
}

/// Whether the agent container has started (running or over), so its log exists.
pub fn agent_started(pod: &Pod) -> bool {
    container_status(pod, AGENT_CONTAINER, false)
        .and_then(|status| status.state.as_ref())
        .is_some_and(|state| state.running.is_some() || state.terminated.is_some())
}

/// Whether the agent container is over (its log ends for good).
pub fn agent_terminated(pod: &Pod) -> bool {
    container_status(pod, AGENT_CONTAINER, false)
        .and_then(|status| status.state.as_ref())
        .is_some_and(|state| state.terminated.is_some())
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Succeeded,
    Failed,
}

/// The Job's terminal condition, if it has one, with a reason for people.
fn job_condition(job: &Job) -> Option<(Ended, String)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|condition| condition.status == "True")
        .find_map(|condition| {
            let kind = match condition.type_.as_str() {
                "Complete" | "SuccessCriteriaMet" => Ended::Succeeded,
                "Failed" | "FailureTarget" => Ended::Failed,
                _ => return None,
            };
            let reason = match (&condition.reason, &condition.message) {
                (Some(reason), Some(message)) => format!("{reason}: {message}"),
                (Some(reason), None) => reason.clone(),
                (None, Some(message)) => message.clone(),
                (None, None) => condition.type_.clone(),
            };
            Some((kind, reason))
        })
}

fn container_status<'a>(pod: &'a Pod, name: &str, init: bool) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref()?;
    let statuses = if init {
        status.init_container_statuses.as_ref()
    } else {
        status.container_statuses.as_ref()
    }?;
    statuses.iter().find(|status| status.name == name)
}

fn terminated_code(status: &ContainerStatus) -> Option<i32> {
    Some(status.state.as_ref()?.terminated.as_ref()?.exit_code)
}

/// Since when (ms) and why the pod is stuck, if it is: a container waiting for a reason
/// that does not clear, or a pod the scheduler cannot place.
fn stuck(pod: &Pod) -> Option<(i64, String)> {
    let status = pod.status.as_ref()?;
    let created = pod.metadata.creation_timestamp.as_ref().map(millis);
    let containers = status
        .init_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .flatten();
    for container in containers {
        let Some(waiting) = container
            .state
            .as_ref()
            .and_then(|state| state.waiting.as_ref())
        else {
            continue;
        };
        let Some(reason) = waiting.reason.as_deref() else {
            continue;
        };
        if STUCK_REASONS.contains(&reason) {
            let message = waiting.message.as_deref().unwrap_or("no message");
            return Some((
                created.unwrap_or(0),
                format!("{reason} ({} container): {message}", container.name),
            ));
        }
    }
    let unschedulable = status.conditions.iter().flatten().find(|condition| {
        condition.type_ == "PodScheduled"
            && condition.status == "False"
            && condition.reason.as_deref() == Some("Unschedulable")
    })?;
    let since = unschedulable
        .last_transition_time
        .as_ref()
        .map(millis)
        .or(created)
        .unwrap_or(0);
    let message = unschedulable.message.as_deref().unwrap_or("no message");
    Some((since, format!("Unschedulable: {message}")))
}

fn millis(time: &Time) -> i64 {
    time.0.as_millisecond()
}
