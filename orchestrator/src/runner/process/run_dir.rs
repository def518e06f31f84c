//! One folder per run: what lets a run outlive the server and be found again.
//!
//! `runs/{name}/` holds:
//! - `run.json`: the run's record (task, attempt, labels, when it was launched), written
//!   by the launcher before the run starts;
//! - `pid`: the supervisor's pid, written by the supervisor itself before it starts the
//!   agent;
//! - `events.jsonl`: the agent's stdout, its events, one JSON object per line;
//! - `exit`: the agent's exit status as the supervisor saw it (`$?`: the code, or 128 plus
//!   the signal that killed it), written when the agent is gone.
//!
//! Files are written to a temporary name and renamed, so a reader sees all or nothing.
//! No secret is ever written here: those live only in the processes' environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::procs;
use crate::runner::{RunStatus, RunnerError};
use crate::task::{TaskId, now_ms};

pub const RECORD: &str = "run.json";
pub const PID: &str = "pid";
pub const EVENTS: &str = "events.jsonl";
pub const EXIT: &str = "exit";

/// A launched run with no supervisor pid yet counts as pending this long; later it was
/// never started (the launcher died between creating the folder and spawning).
const START_GRACE: Duration = Duration::from_secs(30);

/// What `run.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub name: String,
    pub task_id: TaskId,
    pub attempt: u32,
    pub labels: BTreeMap<String, String>,
    /// ms since the epoch.
    pub launched_at: i64,
    /// ms since the epoch; the watcher stops the run past it.
    pub deadline_at: i64,
}

/// The folder of one run.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub name: String,
    pub path: PathBuf,
}

impl RunDir {
    /// The folder of run `name` under `runs_dir`; refuses names that are not ours (a
    /// name from a row is data: it must not walk out of the runs folder).
    pub fn new(runs_dir: &Path, name: &str) -> Result<Self, RunnerError> {
        crate::runner::check_run_name(name)?;
        Ok(Self {
            name: name.to_string(),
            path: runs_dir.join(name),
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    pub fn write_record(&self, record: &RunRecord) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        let tmp = self.file("run.json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, self.file(RECORD))
    }

    pub fn record(&self) -> Option<RunRecord> {
        let bytes = std::fs::read(self.file(RECORD)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The supervisor's pid, once it wrote it.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.file(PID))
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|pid| *pid > 1)
    }

    /// How the agent ended, once the supervisor (or a cancel) recorded it.
    pub fn exit(&self) -> Option<RunStatus> {
        let text = std::fs::read_to_string(self.file(EXIT)).ok()?;
        Some(exit_status(text.trim()))
    }

    /// Records an ending nobody else will (the run was stopped before its supervisor
    /// could); an ending already recorded stays.
    pub fn record_exit(&self, how: &str) -> std::io::Result<()> {
        if self.file(EXIT).exists() {
            return Ok(());
        }
        let tmp = self.file("exit.cancel.tmp");
        std::fs::write(&tmp, format!("{how}\n"))?;
        std::fs::rename(tmp, self.file(EXIT))
    }

    /// Whether the supervisor is still there.
    pub fn supervisor_alive(&self) -> bool {
        self.pid().is_some_and(|pid| procs::runs(pid, &self.name))
    }

    /// The run's status, from its folder and `/proc`.
    pub fn status(&self) -> RunStatus {
        if !self.exists() {
            return RunStatus::NotFound;
        }
        if let Some(exit) = self.exit() {
            return exit;
        }
        if self.pid().is_some() {
            if self.supervisor_alive() {
                return RunStatus::Running;
            }
            // It may have written its exit record between the two reads.
            return self.exit().unwrap_or(RunStatus::NotFound);
        }
        let launched_at = self.record().map(|r| r.launched_at).unwrap_or_default();
        let young = now_ms().saturating_sub(launched_at) < millis(START_GRACE);
        if young {
            RunStatus::Pending
        } else {
            RunStatus::NotFound
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Reads an `exit` record: the shell's `$?` (a code below 128; 128 + N when signal N
/// killed the agent), or a word a cancel wrote.
pub fn exit_status(text: &str) -> RunStatus {
    match text.parse::<i32>() {
        Ok(code @ 0..=127) => RunStatus::Exited {
            code: Some(code),
            reason: format!("the agent exited with code {code}"),
        },
        Ok(status) if status > 128 => RunStatus::Exited {
            code: None,
            reason: format!("the agent was killed by signal {}", status - 128),
        },
        _ if text == "cancelled" => RunStatus::Exited {
            code: None,
            reason: "the run was cancelled".to_string(),
        },
        _ => RunStatus::Exited {
            code: None,
            reason: format!("the run ended with an unreadable exit record `{text}`"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_records_read_as_codes_signals_or_cancels() {
        assert_eq!(
            exit_status("3"),
            RunStatus::Exited {
                code: Some(3),
                reason: "the agent exited with code 3".into()
            }
        );
        assert_eq!(
            exit_status("137"),
            RunStatus::Exited {
                code: None,
                reason: "the agent was killed by signal 9".into()
            }
        );
        assert!(matches!(
            exit_status("cancelled"),
            RunStatus::Exited { code: None, reason } if reason.contains("cancelled")
        ));
        assert!(matches!(
            exit_status("x"),
            RunStatus::Exited { code: None, .. }
        ));
    }

    #[test]
    fn names_that_could_leave_the_runs_folder_are_refused() {
        let root = Path::new("/tmp/runs");
        for bad in [
            "",
            "../x",
            "agent-../../etc",
            "agent-A",
            "pid:1:x",
            "other-1",
        ] {
            assert!(RunDir::new(root, bad).is_err(), "{bad}");
        }
        let ok = RunDir::new(root, "agent-0b0e-1").unwrap();
        assert_eq!(ok.path, root.join("agent-0b0e-1"));
    }

    #[test]
    fn a_folder_without_a_pid_is_pending_at_first_then_not_found() {
        let runs = tempfile::tempdir().unwrap();
        let dir = RunDir::new(runs.path(), "agent-x-1").unwrap();
        assert_eq!(dir.status(), RunStatus::NotFound);
        std::fs::create_dir(&dir.path).unwrap();
        let mut record = RunRecord {
            name: dir.name.clone(),
            task_id: TaskId::new(),
            attempt: 1,
            labels: BTreeMap::new(),
            launched_at: now_ms(),
            deadline_at: now_ms() + 60_000,
        };
        dir.write_record(&record).unwrap();
        assert_eq!(dir.status(), RunStatus::Pending);
        record.launched_at -= 3_600_000;
        dir.write_record(&record).unwrap();
        assert_eq!(dir.status(), RunStatus::NotFound);
    }

    #[test]
    fn a_dead_supervisor_without_an_exit_record_is_not_found() {
        let runs = tempfile::tempdir().unwrap();
        let dir = RunDir::new(runs.path(), "agent-x-2").unwrap();
        std::fs::create_dir(&dir.path).unwrap();
        // A pid that carries no such run name (this test's own process).
        std::fs::write(dir.file(PID), std::process::id().to_string()).unwrap();
        assert_eq!(dir.status(), RunStatus::NotFound);
        std::fs::write(dir.file(EXIT), "0\n").unwrap();
        assert!(matches!(
            dir.status(),
            RunStatus::Exited { code: Some(0), .. }
        ));
    }
}
