//! Following one container: its stdout (the agent's JSON events) through the engine's
//! log stream, until it is over.
//!
//! The log is read with `follow`; the stream ends when the container stops or the
//! connection breaks. The container's state then decides: over, and the log is read once
//! more without `follow` (whatever the follow stream had not delivered comes now, what
//! it had is skipped), then `Exited`; still going (a broken connection, a container not
//! started yet), and the log is opened again after a pause; gone, and the stream ends
//! without `Exited` (the caller asks `status`).

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{RunFiles, inspect_status};
use crate::runner::process::parse_event;
use crate::runner::{RunStatus, RunnerEvent};

/// Events waiting between the log stream and the watcher of the run.
const BUFFER: usize = 256;
/// Pause before opening the log again while the container has not ended.
const REOPEN_AFTER: Duration = Duration::from_millis(500);

/// Starts following container `name`, its first `skip` events left out, until it is
/// over, gone, `stop` fires or the receiver is dropped.
pub fn spawn(
    docker: Docker,
    name: String,
    files: RunFiles,
    skip: u64,
    stop: CancellationToken,
) -> mpsc::Receiver<RunnerEvent> {
    let (events, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut follower = Follower {
            docker,
            name,
            files: files.clone(),
            sealed: false,
            replay: Replay {
                passed: 0,
                in_stream: 0,
                skip,
            },
        };
        tokio::select! {
            ended = follower.run(&events) => {
                if let Some(event) = ended {
                    files.run_over();
                    let _ = events.send(event).await;
                }
            }
            _ = stop.cancelled() => {}
            _ = events.closed() => {}
        }
    });
    receiver
}

/// Counts events across log streams, so a re-opened stream (which starts from the top)
/// passes on only what is new, and the caller's `skip` holds across them.
struct Replay {
    passed: u64,
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

struct Follower {
    docker: Docker,
    name: String,
    files: RunFiles,
    /// Whether the run's secrets folder was closed (at the agent's first event: the
    /// wrapper deleted the file before the agent started).
    sealed: bool,
    replay: Replay,
}

impl Follower {
    /// Passes on the events; the final `Exited`, or `None` when the container is gone
    /// or the receiver closed.
    async fn run(&mut self, events: &mpsc::Sender<RunnerEvent>) -> Option<RunnerEvent> {
        loop {
            if !self.read_log(true, events).await {
                return None;
            }
            match inspect_status(&self.docker, &self.name).await {
                Ok(RunStatus::Exited { code, reason }) => {
                    if !self.read_log(false, events).await {
                        return None;
                    }
                    return Some(RunnerEvent::Exited { code, reason });
                }
                Ok(RunStatus::NotFound) => return None,
                Ok(RunStatus::Pending | RunStatus::Running) => {}
                Err(err) => {
                    tracing::warn!(run = %self.name, error = %err, "cannot read the container's state; retrying");
                }
            }
            tokio::time::sleep(REOPEN_AFTER).await;
        }
    }

    /// Reads the container's stdout from the start, passing on new events. `false` when
    /// the receiver is gone.
    async fn read_log(&mut self, follow: bool, events: &mpsc::Sender<RunnerEvent>) -> bool {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(false)
            .follow(follow)
            .build();
        let mut stream = self.docker.logs(&self.name, Some(options));
        self.replay.in_stream = 0;
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk.into_bytes(),
                Err(err) => {
                    tracing::debug!(run = %self.name, error = %err, "the log stream ended");
                    // A cut line is read again, whole, from the next stream.
                    return true;
                }
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if !self.sealed {
                    self.files.seal_secrets();
                    self.sealed = true;
                }
                if let Some(event) =
                    parse_event(&line, &self.name).and_then(|event| self.replay.take(event))
                    && events.send(event).await.is_err()
                {
                    return false;
                }
            }
        }
        if !follow
            && !pending.is_empty()
            && let Some(event) =
                parse_event(&pending, &self.name).and_then(|event| self.replay.take(event))
        {
            return events.send(event).await.is_ok();
        }
        true
    }
}
