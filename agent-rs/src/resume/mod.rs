//! Resuming a finished run: `agent-rs run --resume OUTPUT_DIR "message"` (and a job
//! given the previous run's outputs) starts where that run ended, with the conversation
//! so far and the new message.
//!
//! Two things come from the previous output folder: `diff.patch`, the cumulative diff
//! from the task's base to where that run left the workspace, and `trajectory.jsonl`,
//! from which the conversation is rebuilt (`conversation`). The workspace is either as
//! the previous run left it (a local folder) or the base (a job's fresh unpack); either
//! way the base is recorded before the previous diff is put in place (`baseline`), so
//! the new run writes a cumulative `diff.patch` (base to now) beside `step.patch` (this
//! run's changes alone), and can itself be resumed.

mod baseline;
mod conversation;

use std::path::{Path, PathBuf};

pub use baseline::{Baselines, WorkspaceState, prepare_baselines};
pub use conversation::{Restored, follow_up_prompt, restore_conversation, summarize};

use crate::events::EventRecord;
use crate::output_dir;

/// Why a run cannot be resumed; all are bad input (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot read `{path}` of the run to resume: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` line {line} is not a trajectory event: {message}")]
    Trajectory {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the run to resume has no `task_started` event; is `{0}` a run's output folder?")]
    NoTask(PathBuf),
    #[error(
        "the workspace is not where the previous run left it (its diff does not reverse-apply): {0}"
    )]
    NotAtEnd(String),
    #[error("the previous run's diff does not apply to the workspace: {0}")]
    DoesNotApply(String),
    #[error("cannot prepare the workspace for the resumed run: {0}")]
    Workspace(String),
}

/// What a previous run left behind that a resumed run needs.
#[derive(Debug, Clone)]
pub struct PreviousRun {
    /// Its cumulative diff (base to where it ended); empty when it changed nothing.
    pub diff: String,
    pub events: Vec<EventRecord>,
}

impl PreviousRun {
    /// Reads `diff.patch` and `trajectory.jsonl` from a run's output folder. A missing
    /// `diff.patch` counts as an empty diff (a run that failed before diffing).
    pub fn load(dir: &Path) -> Result<Self, ResumeError> {
        let diff_path = dir.join(output_dir::DIFF_FILE);
        let diff = match std::fs::read_to_string(&diff_path) {
            Ok(diff) => diff,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ResumeError::Read {
                    path: diff_path,
                    source,
                });
            }
        };
        let trajectory_path = dir.join(output_dir::TRAJECTORY_FILE);
        let text =
            std::fs::read_to_string(&trajectory_path).map_err(|source| ResumeError::Read {
                path: trajectory_path.clone(),
                source,
            })?;
        let events = parse_events(&text, &trajectory_path)?;
        Ok(Self { diff, events })
    }
}

/// The events of a trajectory; a last line cut short (a killed run) is dropped.
fn parse_events(text: &str, path: &Path) -> Result<Vec<EventRecord>, ResumeError> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut events = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        match serde_json::from_str::<EventRecord>(line) {
            Ok(record) => events.push(record),
            Err(_) if index + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(err) => {
                return Err(ResumeError::Trajectory {
                    path: path.to_path_buf(),
                    line: index + 1,
                    message: err.to_string(),
                });
            }
        }
    }
    Ok(events)
}
