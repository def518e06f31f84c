//! The task model and its status machine.
//!
//! `PENDING -> QUEUED -> PROCESSING -> DOWNLOADING_CODE -> RUNNING_AGENT ->
//! UPLOADING_RESULTS -> COMPLETED | FAILED | CANCELLED`. Moves go forward only (steps may
//! be skipped: a task can fail from any live state, or be cancelled), and a terminal state
//! is final. The store enforces the same rule with compare-and-set.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A task's id: a UUID, shown in its hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub uuid::Uuid);

impl TaskId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TaskId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Pending,
    Queued,
    Processing,
    DownloadingCode,
    RunningAgent,
    UploadingResults,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 9] = [
        TaskStatus::Pending,
        TaskStatus::Queued,
        TaskStatus::Processing,
        TaskStatus::DownloadingCode,
        TaskStatus::RunningAgent,
        TaskStatus::UploadingResults,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// Position along the happy path; terminal states share the last rank.
    fn rank(self) -> u8 {
        match self {
            TaskStatus::Pending => 0,
            TaskStatus::Queued => 1,
            TaskStatus::Processing => 2,
            TaskStatus::DownloadingCode => 3,
            TaskStatus::RunningAgent => 4,
            TaskStatus::UploadingResults => 5,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled => 6,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// Whether `self -> next` is a legal move: forward only, never out of a terminal
    /// state. `COMPLETED` is reached only from `UPLOADING_RESULTS`.
    pub fn can_move_to(self, next: TaskStatus) -> bool {
        if self.is_terminal() || self == next {
            return false;
        }
        match next {
            TaskStatus::Completed => self == TaskStatus::UploadingResults,
            TaskStatus::Failed | TaskStatus::Cancelled => true,
            _ => next.rank() > self.rank(),
        }
    }

    /// The name stored in databases and shown in the API (`RUNNING_AGENT`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "PENDING",
            TaskStatus::Queued => "QUEUED",
            TaskStatus::Processing => "PROCESSING",
            TaskStatus::DownloadingCode => "DOWNLOADING_CODE",
            TaskStatus::RunningAgent => "RUNNING_AGENT",
            TaskStatus::UploadingResults => "UPLOADING_RESULTS",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status name.
#[derive(Debug, thiserror::Error)]
#[error("unknown task status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for TaskStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// Where the code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InputSource {
    /// A repository cloned (depth 1) at `git_ref` (branch, tag or commit; default branch
    /// when absent).
    Git {
        git_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        git_ref: Option<String>,
    },
    /// An uploaded zip, kept in the blob store under `zip_key`.
    Zip { zip_name: String, zip_key: String },
}

/// The agent's limits for this task; `None` means the agent's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    pub max_turns: Option<u32>,
    pub max_tokens: Option<u64>,
    pub timeout_secs: Option<u64>,
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    pub owner: String,
    pub input: InputSource,
    pub description: String,
    pub target_file: Option<String>,
    pub model: Option<String>,
    pub limits: TaskLimits,
    /// The client's `Idempotency-Key`: a second create with the same owner and key
    /// returns the first task instead of making another.
    pub idempotency_key: Option<String>,
    /// A pull request to open once the run completed with changes; stored with the task
    /// (its token only sealed). Never serialized: it may hold a sealed token.
    #[serde(skip)]
    pub pull_request: Option<crate::pr::PullRequestAsk>,
    /// How many independent attempts to make, and the check that ranks them.
    #[serde(default)]
    pub best_of: BestOf,
    /// A setup script run in the workspace before the agent, with the network on
    /// (`agent-rs job`'s `AGENT_SETUP`); its output is the run's `setup.log`.
    #[serde(default)]
    pub setup: Option<String>,
}

/// Best-of-N: a task may ask for several independent attempts (each a run of its own,
/// from the same starting code), ranked by a check; the best one's diff becomes the
/// task's. One attempt with no check is the ordinary task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BestOf {
    /// From 1 (bounded by `max_attempts_per_task`).
    pub attempts: u32,
    /// A command run in each attempt's final workspace (`bash -c`, the agent's sandbox
    /// rules); exit code 0 passes.
    pub check: Option<String>,
}

impl Default for BestOf {
    fn default() -> Self {
        Self {
            attempts: 1,
            check: None,
        }
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub owner: String,
    pub input: InputSource,
    pub description: String,
    pub target_file: Option<String>,
    pub model: Option<String>,
    pub limits: TaskLimits,
    pub status: TaskStatus,
    /// Human-readable note on the latest status (why it failed, say).
    pub message: Option<String>,
    pub pr_url: Option<String>,
    /// How many times a worker has claimed it to prepare and launch a run: a task whose
    /// lease expired before its agent started is claimed again under the next attempt.
    /// Adopting a running run (after a worker restart) keeps the attempt.
    pub attempt: u32,
    /// The agent's `result.json`, once there is one.
    pub result: Option<serde_json::Value>,
    /// The run's name (see [`crate::runner::run_name`]), saved before the run is launched,
    /// so a run always has a row that names it.
    pub runner_ref: Option<String>,
    pub idempotency_key: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    /// When the task must be finished by; past it, its run is stopped and it fails.
    pub deadline_at: Option<i64>,
    /// Who holds the task while it is claimed (a worker's lease id); `None` when nobody
    /// does (not claimed yet, released, or finished).
    pub lease_holder: Option<String>,
    /// Until when the holder's lease runs, by the store's clock (ms since the epoch).
    /// Past it, the reconciler may take the task over. On a released task it is when the
    /// reconciler looks at it again.
    pub lease_expires_at: Option<i64>,
    /// Which run of the task the row describes, from 1: each follow-up message starts
    /// the next (see [`crate::store::TaskStore::follow_up`]).
    pub run_number: u32,
    /// The current run's follow-up message; `None` for the first run.
    pub follow_up: Option<String>,
    /// Best-of-N: how many attempts, and their check.
    #[serde(default)]
    pub best_of: BestOf,
    /// Best-of-N: the attempt (run number) whose diff is the task's, once all ended.
    #[serde(default)]
    pub chosen_run: Option<u32>,
    /// The task's setup script, run before the agent in every run of the task.
    #[serde(default)]
    pub setup: Option<String>,
}

impl Task {
    /// Whether the task makes several attempts (or checks its one): its runs are
    /// attempts, not follow-ups.
    pub fn is_best_of(&self) -> bool {
        self.best_of.attempts > 1 || self.best_of.check.is_some()
    }

    /// The run whose outputs are the task's: the chosen attempt once there is one,
    /// else the current run.
    pub fn result_run(&self) -> u32 {
        self.chosen_run.unwrap_or(self.run_number)
    }

    /// What the current run is asked to do: its follow-up message, or the description.
    pub fn instruction(&self) -> &str {
        self.follow_up.as_deref().unwrap_or(&self.description)
    }

    /// The id the status cache keeps the current run's events under: the task's own
    /// for the first run (as before follow-ups existed), one derived from it for each
    /// later run, so every run has its own gapless, closable stream.
    pub fn events_id(&self) -> TaskId {
        run_events_id(self.id, self.run_number)
    }
}

/// The status cache's id for run `run_number` of task `id` (see [`Task::events_id`]).
pub fn run_events_id(id: TaskId, run_number: u32) -> TaskId {
    if run_number <= 1 {
        return id;
    }
    // The last 32 bits carry the run number; the rest stay the task's, so the id is
    // stable and readable next to the task's in logs.
    let mut bytes = *id.0.as_bytes();
    bytes[12..].copy_from_slice(&run_number.to_be_bytes());
    bytes[8] ^= 0x40;
    TaskId(uuid::Uuid::from_bytes(bytes))
}

/// A finished run of a task (one a follow-up message continued, or a best-of-N
/// attempt): how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_number: u32,
    /// The description for the first run, the follow-up message for later ones.
    pub instruction: String,
    pub status: TaskStatus,
    pub message: Option<String>,
    pub result: Option<serde_json::Value>,
    /// When the follow-up after it was accepted, or the attempt ended (ms since the
    /// epoch, store's clock).
    pub finished_at: i64,
}

/// Fields set together with a status change; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskUpdate {
    pub message: Option<String>,
    pub pr_url: Option<String>,
    pub result: Option<serde_json::Value>,
    pub runner_ref: Option<String>,
    /// Sets `deadline_at` to this long from now, by the store's clock (so every process
    /// agrees on it whatever its own clock says).
    pub deadline_in: Option<std::time::Duration>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn happy_path_moves_forward() {
        let path = [
            Pending,
            Queued,
            Processing,
            DownloadingCode,
            RunningAgent,
            UploadingResults,
            Completed,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_move_to(pair[1]), "{} -> {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn backward_and_terminal_moves_are_refused() {
        assert!(!RunningAgent.can_move_to(Queued));
        assert!(!Processing.can_move_to(Processing));
        for terminal in [Completed, Failed, Cancelled] {
            for next in TaskStatus::ALL {
                assert!(!terminal.can_move_to(next), "{terminal} -> {next}");
            }
        }
    }

    #[test]
    fn completed_only_after_uploading_and_failure_from_anywhere_live() {
        assert!(!RunningAgent.can_move_to(Completed));
        assert!(!Pending.can_move_to(Completed));
        for live in [
            Pending,
            Queued,
            Processing,
            DownloadingCode,
            RunningAgent,
            UploadingResults,
        ] {
            assert!(live.can_move_to(Failed));
            assert!(live.can_move_to(Cancelled));
        }
    }

    #[test]
    fn status_names_round_trip() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert!("RUNNING".parse::<TaskStatus>().is_err());
    }
}
