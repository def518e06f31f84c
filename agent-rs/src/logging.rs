//! `agent.log`: the run's diagnostic log, with secrets redacted on the way to disk.
//!
//! The tracing formatter writes one event per writer it asks for; each
//! [`RedactingWriter`] gathers that event and redacts it whole when dropped, so a secret
//! can never be split across two writes and slip through.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tools::SecretRedactor;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Sends `tracing` output to `path` (level from `AGENT_LOG`, default `info`).
pub fn init_file_logging(path: &Path, redactor: SecretRedactor) -> std::io::Result<()> {
    let file = File::create(path)?;
    let make_writer = RedactingMakeWriter {
        file: Arc::new(Mutex::new(file)),
        redactor: Arc::new(redactor),
    };
    let filter = EnvFilter::try_from_env("AGENT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(make_writer)
        .try_init();
    Ok(())
}

#[derive(Clone)]
struct RedactingMakeWriter {
    file: Arc<Mutex<File>>,
    redactor: Arc<SecretRedactor>,
}

impl<'a> MakeWriter<'a> for RedactingMakeWriter {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            buffer: Vec::new(),
            file: Arc::clone(&self.file),
            redactor: Arc::clone(&self.redactor),
        }
    }
}

/// Collects one log event; redacts and writes it when dropped.
pub struct RedactingWriter {
    buffer: Vec<u8>,
    file: Arc<Mutex<File>>,
    redactor: Arc<SecretRedactor>,
}

impl Write for RedactingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let text = self.redactor.redact(&String::from_utf8_lossy(&self.buffer));
        if let Ok(mut file) = self.file.lock() {
            let _ = file.write_all(text.as_bytes());
        }
    }
}
