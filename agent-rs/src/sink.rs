//! Where events go: the trajectory file always, and the caller's streams (JSON lines on
//! stdout with `--json`, a readable progress view otherwise).
//!
//! Every line passes through the secret redactor first, so a key that slipped into a tool
//! output never reaches a file or a terminal. The trajectory is flushed line by line: a
//! killed run still leaves every event up to its last moment.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use tools::SecretRedactor;

use crate::events::{AgentEvent, EventRecord};
use crate::progress::ProgressView;

/// Receives each event once, in order.
pub struct EventSink {
    seq: u64,
    trajectory: Box<dyn Write + Send>,
    json_out: Option<Box<dyn Write + Send>>,
    progress: Option<ProgressView>,
    redactor: SecretRedactor,
    /// The first write error, reported at the end instead of failing the run mid-way.
    write_error: Option<std::io::Error>,
}

impl EventSink {
    pub fn new(trajectory: Box<dyn Write + Send>, redactor: SecretRedactor) -> Self {
        Self {
            seq: 0,
            trajectory,
            json_out: None,
            progress: None,
            redactor,
            write_error: None,
        }
    }

    /// Also stream every event as a JSON line to `out` (stdout for `--json`).
    pub fn with_json_stream(mut self, out: Box<dyn Write + Send>) -> Self {
        self.json_out = Some(out);
        self
    }

    /// Also show a human progress view.
    pub fn with_progress(mut self, progress: ProgressView) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn redactor(&self) -> &SecretRedactor {
        &self.redactor
    }

    pub fn emit(&mut self, event: AgentEvent) {
        let record = EventRecord {
            seq: self.seq,
            ts_ms: now_ms(),
            event,
        };
        self.seq += 1;
        let line = match serde_json::to_string(&record) {
            Ok(line) => self.redactor.redact(&line),
            Err(err) => {
                tracing::error!(%err, "event did not serialize");
                return;
            }
        };
        let mut result = writeln!(self.trajectory, "{line}").and_then(|()| self.trajectory.flush());
        if let Some(out) = &mut self.json_out {
            result = result.and(writeln!(out, "{line}").and_then(|()| out.flush()));
        }
        if let Err(err) = result {
            self.write_error.get_or_insert(err);
        }
        if let Some(progress) = &mut self.progress {
            progress.show(&record.event, &self.redactor);
        }
    }

    /// The first write failure, if any.
    pub fn take_write_error(&mut self) -> Option<std::io::Error> {
        self.write_error.take()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
