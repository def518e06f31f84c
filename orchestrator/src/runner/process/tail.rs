//! Following a run's `events.jsonl` as the agent writes it, from any process.
//!
//! The agent's stdout goes to a file, not a pipe to the server, so a server that dies
//! does not take the agent with it (no `SIGPIPE`), and a restarted server reads the same
//! events again. The tail reads what is there, then polls for more until the exit record
//! appears, drains the rest, kills whatever the run left running, and reports the exit.
//! If the supervisor vanishes without an exit record (host crash) the stream just ends:
//! the caller asks `status`, which says `NotFound`.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::procs::kill_run_processes;
use super::run_dir::{EVENTS, RunDir};
use crate::runner::{RunStatus, RunnerEvent};

/// Longest stdout line taken as an event; longer ones are skipped and logged.
pub const MAX_EVENT_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Between reads when the file has nothing new.
const POLL: Duration = Duration::from_millis(100);
/// Every this many idle polls, check that the run is still there.
const LIVENESS_EVERY: u32 = 10;

/// Events waiting between the file and the watcher.
pub const BUFFER: usize = 256;

/// The state of one tail: the unfinished last line, how many events were seen.
struct Lines {
    partial: Vec<u8>,
    /// Inside a line over the limit: drop bytes until its end.
    skipping: bool,
    seen: u64,
    skip: u64,
}

impl Lines {
    /// Feeds bytes; returns the events of every line they complete.
    fn feed(&mut self, bytes: &[u8], run: &str) -> Vec<RunnerEvent> {
        let mut events = Vec::new();
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let complete = chunk.ends_with(b"\n");
            if !self.skipping {
                self.partial.extend_from_slice(chunk);
                if self.partial.len() > MAX_EVENT_LINE_BYTES {
                    tracing::warn!(
                        run,
                        "the agent printed a line over {MAX_EVENT_LINE_BYTES} bytes; skipped"
                    );
                    self.partial.clear();
                    self.skipping = !complete;
                    continue;
                }
            }
            if complete {
                if self.skipping {
                    self.skipping = false;
                } else {
                    let line = std::mem::take(&mut self.partial);
                    events.extend(self.line(&line, run));
                }
            }
        }
        events
    }

    /// The last line, when the file ended without a newline.
    fn finish(&mut self, run: &str) -> Option<RunnerEvent> {
        let line = std::mem::take(&mut self.partial);
        if self.skipping {
            return None;
        }
        self.line(&line, run)
    }

    fn line(&mut self, line: &[u8], run: &str) -> Option<RunnerEvent> {
        let event = parse_event(line, run)?;
        self.seen += 1;
        (self.seen > self.skip).then_some(event)
    }
}

/// One stdout line as an event; anything but a JSON object is logged and skipped.
pub fn parse_event(line: &[u8], run: &str) -> Option<RunnerEvent> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) if value.is_object() => Some(RunnerEvent::AgentEvent(value)),
        _ => {
            let shown: String = text.chars().take(200).collect();
            tracing::debug!(run, line = %shown, "the agent printed a line that is not a JSON event; skipped");
            None
        }
    }
}

/// Starts following `dir`'s events, the first `skip` left out, until the run is over or
/// `stop` fires.
pub fn spawn(dir: RunDir, skip: u64, stop: CancellationToken) -> mpsc::Receiver<RunnerEvent> {
    let (events, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        tokio::select! {
            _ = follow(&dir, skip, &events) => {}
            _ = stop.cancelled() => {}
            _ = events.closed() => {}
        }
    });
    receiver
}

async fn follow(dir: &RunDir, skip: u64, events: &mpsc::Sender<RunnerEvent>) {
    let run = dir.name.as_str();
    let mut lines = Lines {
        partial: Vec::new(),
        skipping: false,
        seen: 0,
        skip,
    };
    let mut file = None;
    let mut idle = 0u32;
    loop {
        if file.is_none() {
            file = tokio::fs::File::open(dir.file(EVENTS)).await.ok();
        }
        let read_some = match file.as_mut() {
            Some(file) => match drain(file, &mut lines, run, events).await {
                Ok(read_some) => read_some,
                Err(Gone) => return,
            },
            None => false,
        };
        if read_some {
            idle = 0;
            continue;
        }
        if let Some(RunStatus::Exited { code, reason }) = dir.exit() {
            // The agent's stdout closed before the record was written: what is in the
            // file now is everything.
            if let Some(file) = file.as_mut()
                && drain(file, &mut lines, run, events).await.is_err()
            {
                return;
            }
            if let Some(last) = lines.finish(run)
                && events.send(last).await.is_err()
            {
                return;
            }
            kill_run_processes(run).await;
            let _ = events.send(RunnerEvent::Exited { code, reason }).await;
            return;
        }
        idle += 1;
        if idle.is_multiple_of(LIVENESS_EVERY) && dir.status() == RunStatus::NotFound {
            tracing::warn!(run, "the run is gone without an exit record");
            kill_run_processes(run).await;
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The watcher went away.
struct Gone;

/// Reads everything the file has now; whether it had anything.
async fn drain(
    file: &mut tokio::fs::File,
    lines: &mut Lines,
    run: &str,
    events: &mpsc::Sender<RunnerEvent>,
) -> Result<bool, Gone> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut read_some = false;
    loop {
        let n = match file.read(&mut buf).await {
            Ok(0) => return Ok(read_some),
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(run, error = %err, "reading the run's events failed");
                return Ok(read_some);
            }
        };
        read_some = true;
        for event in lines.feed(&buf[..n], run) {
            events.send(event).await.map_err(|_| Gone)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(skip: u64) -> Lines {
        Lines {
            partial: Vec::new(),
            skipping: false,
            seen: 0,
            skip,
        }
    }

    fn kinds(events: &[RunnerEvent]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                RunnerEvent::AgentEvent(value) => value["type"].as_str().unwrap().to_string(),
                RunnerEvent::Exited { .. } => "exit".to_string(),
            })
            .collect()
    }

    #[test]
    fn lines_split_across_reads_make_whole_events() {
        let mut state = lines(0);
        let first = state.feed(b"{\"type\":\"a\"}\n{\"ty", "r");
        assert_eq!(kinds(&first), ["a"]);
        let events = state.feed(b"pe\":\"b\"}\nnot json\n{\"type\":\"c\"}", "r");
        assert_eq!(kinds(&events), ["b"]);
        assert_eq!(kinds(&[state.finish("r").unwrap()]), ["c"]);
    }

    #[test]
    fn skipped_events_are_counted_but_not_sent() {
        let mut state = lines(2);
        let events = state.feed(
            b"{\"type\":\"a\"}\nnoise\n{\"type\":\"b\"}\n{\"type\":\"c\"}\n",
            "r",
        );
        assert_eq!(kinds(&events), ["c"]);
        assert_eq!(state.seen, 3);
    }

    #[test]
    fn an_overlong_line_is_dropped_and_the_next_one_read() {
        let mut state = lines(0);
        let long = vec![b'x'; MAX_EVENT_LINE_BYTES + 10];
        assert!(state.feed(&long, "r").is_empty());
        let events = state.feed(b"xxx\n{\"type\":\"after\"}\n", "r");
        assert_eq!(kinds(&events), ["after"]);
    }
}
