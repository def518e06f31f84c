//! What the job tells the operator: human lines on stderr (a failed Job's log is often
//! all there is to read), and why it stopped before the run, with the exit code that
//! tells the orchestrator whose fault it was.

use std::io::Write;

use tools::SecretRedactor;

use super::download;
use crate::exit;

/// Why the job stopped before the run, and the exit code that tells the orchestrator.
pub(super) struct Refusal {
    pub(super) message: String,
    pub(super) code: u8,
}

impl From<String> for Refusal {
    /// A bad input (the archive, a setting): exit code 2.
    fn from(message: String) -> Self {
        Self {
            message,
            code: exit::BAD_INPUT,
        }
    }
}

impl Refusal {
    /// A download that failed: the store's fault (exit 5) when it kept failing
    /// transiently until the retries ran out, else the input's (exit 2: a 403 from an
    /// expired signature, a 404, an archive past the cap).
    pub(super) fn download(err: download::DownloadError) -> Self {
        Self {
            code: if err.transient {
                exit::INFRASTRUCTURE
            } else {
                exit::BAD_INPUT
            },
            message: err.to_string(),
        }
    }
}

/// Human lines on stderr, tagged with the task id and passed through the redactor.
pub(super) struct Reporter {
    pub(super) out: Box<dyn Write + Send>,
    pub(super) redactor: SecretRedactor,
    pub(super) task_id: String,
}

impl Reporter {
    pub(super) fn say(&mut self, message: &str) {
        let line = if self.task_id.is_empty() {
            format!("agent-rs job: {message}")
        } else {
            format!("agent-rs job {}: {message}", self.task_id)
        };
        let line = self.redactor.redact(&line);
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    pub(super) fn fail(&mut self, code: u8, err: &dyn std::fmt::Display) -> u8 {
        self.say(&err.to_string());
        code
    }
}
