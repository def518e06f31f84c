//! Following one run: the Job and its pod through watchers, the agent's events through
//! the pod's log stream, until the run is over.
//!
//! Nothing here sleeps to poll. Two `kube-runtime` watchers deliver every change of the
//! Job and the pod; [`state::verdict`] reads them after each change. The log stream
//! (`follow=true`) is opened once the agent container started; if it breaks while the
//! container still runs it is opened again and the lines already passed on are skipped,
//! so the events come out once each, in order. The only timers are the moment a stuck
//! pod passes its limit, a short pause before re-opening a broken log stream, and a
//! bound on draining the log once the run is over.
//!
//! The stream ends with `Exited` once the run is over and its log drained; a pod stuck
//! past the limit ends it too, after its Job is deleted (Kubernetes would keep it
//! forever). A Job that disappears (cancelled elsewhere, expired) ends the stream without
//! `Exited`: the caller asks `status`.

use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::delete_job;
use super::manifest::{AGENT_CONTAINER, LABEL_RUN};
use super::state::{self, agent_started, agent_terminated};
use crate::runner::process::parse_event;
use crate::runner::{RunStatus, RunnerEvent};
use crate::task::now_ms;

/// Events waiting between the log stream and the watcher of the run.
const BUFFER: usize = 256;
/// Pause before opening the log again after it broke while the agent still ran.
const REOPEN_AFTER: Duration = Duration::from_secs(1);
/// How long the log may keep going once the run is known to be over.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// The run to follow.
pub struct Target {
    pub jobs: Api<Job>,
    pub pods: Api<Pod>,
    pub name: String,
    pub stuck_after: Duration,
}

/// Starts following `target`, its first `skip` events left out, until the run is over,
/// the Job is gone, `stop` fires or the receiver is dropped.
pub fn spawn(target: Target, skip: u64, stop: CancellationToken) -> mpsc::Receiver<RunnerEvent> {
    let (events, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut follower = Follower::new(target, skip);
        tokio::select! {
            _ = follower.run(&events) => {}
            _ = stop.cancelled() => {}
            _ = events.closed() => {}
        }
    });
    receiver
}

/// Counts events across log streams, so a re-opened stream (which starts from the top)
/// passes on only what is new, and the caller's `skip` holds across them.
struct Replay {
    /// Events passed over so far (skipped or sent).
    passed: u64,
    /// Events read from the current stream.
    in_stream: u64,
    skip: u64,
}

impl Replay {
    fn take(&mut self, event: RunnerEvent) -> Option<RunnerEvent> {
        self.in_stream += 1;
        if self.in_stream <= self.passed {
            return None;
        }
        self.passed += 1;
        (self.passed > self.skip).then_some(event)
    }
}

type Lines = BoxStream<'static, std::io::Result<String>>;

struct Follower {
    target: Target,
    job: Option<Job>,
    /// The Job appeared in the current (re-)list of its watcher.
    job_listed: bool,
    pod: Option<Pod>,
    /// The pod watcher has listed once: `pod` is what exists, not just what arrived.
    pods_listed: bool,
    log: Option<Lines>,
    /// The agent's log ended with the container: nothing more will come.
    log_over: bool,
    reopen_at: Option<Instant>,
    drain_until: Option<Instant>,
    replay: Replay,
}

/// What one step of the loop decided.
enum Next {
    Wait { recheck_at: Option<Instant> },
    Exit(RunnerEvent),
}

impl Follower {
    fn new(target: Target, skip: u64) -> Self {
        Self {
            target,
            job: None,
            job_listed: false,
            pod: None,
            pods_listed: false,
            log: None,
            log_over: false,
            reopen_at: None,
            drain_until: None,
            replay: Replay {
                passed: 0,
                in_stream: 0,
                skip,
            },
        }
    }

    async fn run(&mut self, events: &mpsc::Sender<RunnerEvent>) {
        let name = self.target.name.clone();
        let mut jobs = watcher::watcher(
            self.target.jobs.clone(),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        )
        .default_backoff()
        .boxed();
        let mut pods = watcher::watcher(
            self.target.pods.clone(),
            watcher::Config::default().labels(&format!("{LABEL_RUN}={name}")),
        )
        .default_backoff()
        .boxed();
        loop {
            let recheck_at = match self.decide().await {
                Next::Exit(event) => {
                    let _ = events.send(event).await;
                    return;
                }
                Next::Wait { recheck_at } => recheck_at,
            };
            if self.open_log_if_due().await {
                continue;
            }
            let wake_at = [recheck_at, self.reopen_at, self.drain_until]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                event = jobs.next() => match event {
                    Some(Ok(event)) => {
                        if !self.on_job(event) {
                            return;
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(run = %name, error = %err, "watching the Job failed; retrying");
                    }
                    None => return,
                },
                event = pods.next() => match event {
                    Some(Ok(event)) => self.on_pod(event),
                    Some(Err(err)) => {
                        tracing::warn!(run = %name, error = %err, "watching the pod failed; retrying");
                    }
                    None => return,
                },
                line = next_line(&mut self.log), if self.log.is_some() => match line {
                    Some(Ok(line)) => {
                        if let Some(event) = parse_event(line.as_bytes(), &name)
                            .and_then(|event| self.replay.take(event))
                            && events.send(event).await.is_err()
                        {
                            return;
                        }
                    }
                    Some(Err(err)) => {
                        tracing::debug!(run = %name, error = %err, "the log stream broke");
                        self.log_ended();
                    }
                    None => self.log_ended(),
                },
                () = sleep_until(wake_at), if wake_at.is_some() => {
                    if self.drain_until.is_some_and(|at| at <= Instant::now()) {
                        tracing::warn!(run = %name, "the log went on after the run ended; cut");
                        self.log = None;
                        self.log_over = true;
                    }
                }
            }
        }
    }

    /// Reads the Job and pod as they are now.
    async fn decide(&mut self) -> Next {
        let Some(job) = &self.job else {
            return Next::Wait { recheck_at: None };
        };
        let now = now_ms();
        let verdict = state::verdict(job, self.pod.as_ref(), now, self.target.stuck_after);
        let RunStatus::Exited { code, reason } = verdict.status else {
            let recheck_at = verdict.recheck_at_ms.map(|at| {
                let wait = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
                Instant::now() + Duration::from_millis(wait)
            });
            return Next::Wait { recheck_at };
        };
        if !self.pods_listed {
            // The Job can report the end before the pod watcher has told of the pod
            // whose log holds the events.
            return Next::Wait { recheck_at: None };
        }
        if verdict.stuck {
            tracing::warn!(run = %self.target.name, %reason, "deleting a Job whose pod cannot start");
            if let Err(err) = delete_job(&self.target.jobs, &self.target.name).await {
                tracing::warn!(run = %self.target.name, error = %err, "could not delete the stuck Job; the reconciler retries");
            }
            return Next::Exit(RunnerEvent::Exited { code, reason });
        }
        let started = self.pod.as_ref().is_some_and(agent_started);
        if self.log_over || !started {
            return Next::Exit(RunnerEvent::Exited { code, reason });
        }
        if self.log.is_some() {
            self.drain_until
                .get_or_insert_with(|| Instant::now() + DRAIN_LIMIT);
        } else {
            // Read the log once more to its end: lines after a break are not lost.
            self.reopen_at = None;
        }
        Next::Wait { recheck_at: None }
    }

    /// Opens the agent's log when the container has started and no stream is open.
    /// `true` when it found the log gone for good (the run must be decided again).
    async fn open_log_if_due(&mut self) -> bool {
        if self.log.is_some() || self.log_over {
            return false;
        }
        if self.reopen_at.is_some_and(|at| at > Instant::now()) {
            return false;
        }
        let Some(pod) = self.pod.as_ref().filter(|pod| agent_started(pod)) else {
            return false;
        };
        let Some(pod_name) = pod.metadata.name.clone() else {
            return false;
        };
        let params = LogParams {
            container: Some(AGENT_CONTAINER.to_string()),
            follow: true,
            ..LogParams::default()
        };
        match self.target.pods.log_stream(&pod_name, &params).await {
            Ok(reader) => {
                self.log = Some(reader.lines().boxed());
                self.replay.in_stream = 0;
                self.reopen_at = None;
            }
            Err(err) => {
                if self.over() {
                    // The pod is gone with its log: what was read is all there is.
                    tracing::warn!(run = %self.target.name, error = %err, "the log of a finished run is unreadable");
                    self.log_over = true;
                    return true;
                }
                tracing::debug!(run = %self.target.name, error = %err, "cannot open the log yet");
                self.reopen_at = Some(Instant::now() + REOPEN_AFTER);
            }
        }
        false
    }

    /// The log stream ended: for good if the container is over, else it broke.
    fn log_ended(&mut self) {
        self.log = None;
        if self.over() {
            self.log_over = true;
        } else {
            self.reopen_at = Some(Instant::now() + REOPEN_AFTER);
        }
    }

    /// Whether the agent container (or the whole Job) is over.
    fn over(&self) -> bool {
        self.pod.as_ref().is_some_and(agent_terminated)
            || self.job.as_ref().is_some_and(|job| {
                matches!(
                    state::verdict(job, None, 0, Duration::MAX).status,
                    RunStatus::Exited { .. }
                )
            })
    }

    /// Takes in a Job event; `false` when the Job is gone.
    fn on_job(&mut self, event: Event<Job>) -> bool {
        match event {
            Event::Init => self.job_listed = false,
            Event::InitApply(job) => {
                self.job_listed = true;
                self.job = Some(job);
            }
            Event::InitDone => return self.job_listed,
            Event::Apply(job) => self.job = Some(job),
            Event::Delete(_) => return false,
        }
        true
    }

    fn on_pod(&mut self, event: Event<Pod>) {
        match event {
            Event::InitApply(pod) | Event::Apply(pod) => {
                let newer = self.pod.as_ref().is_none_or(|current| {
                    current.metadata.name == pod.metadata.name
                        || current.metadata.creation_timestamp <= pod.metadata.creation_timestamp
                });
                if newer {
                    self.pod = Some(pod);
                }
            }
            Event::InitDone => self.pods_listed = true,
            // A deleted pod keeps its last known state: it tells how the run ended.
            Event::Delete(_) | Event::Init => {}
        }
    }
}

async fn next_line(log: &mut Option<Lines>) -> Option<std::io::Result<String>> {
    match log {
        Some(lines) => lines.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
