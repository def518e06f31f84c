//! What the store keeps of a pull request a task asked for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::task::TaskId;

/// A token sealed with the server's key ([`super::seal::TokenSealer`]): what the store
/// keeps of a token sent with a task. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedToken(pub String);

impl fmt::Debug for SealedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedToken(..)")
    }
}

/// A task's request for a pull request, as stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequestAsk {
    /// The branch to merge into; the repository's default branch when `None`.
    pub base: Option<String>,
    /// The title; the task's description (first line) when `None`.
    pub title: Option<String>,
    /// The token sent with the task, sealed; `None` when the owner's configured token is
    /// to be used.
    pub sealed_token: Option<SealedToken>,
}

/// Where a pull request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PrState {
    /// Waiting for the run to complete (or for a retry to be picked up).
    Requested,
    /// A worker is pushing the branch and opening the pull request.
    Opening,
    Opened,
    /// The push or the pull request failed; `error` says why, and a retry may try again.
    Failed,
    /// Nothing to open: the task did not complete, or the agent changed nothing.
    Skipped,
}

impl PrState {
    pub const ALL: [PrState; 5] = [
        PrState::Requested,
        PrState::Opening,
        PrState::Opened,
        PrState::Failed,
        PrState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PrState::Requested => "REQUESTED",
            PrState::Opening => "OPENING",
            PrState::Opened => "OPENED",
            PrState::Failed => "FAILED",
            PrState::Skipped => "SKIPPED",
        }
    }
}

impl fmt::Display for PrState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PrState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PrState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown pull request state `{s}`"))
    }
}

/// A task's pull request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestRecord {
    pub task_id: TaskId,
    pub ask: PullRequestAsk,
    pub state: PrState,
    /// Why the last try failed or was skipped.
    pub error: Option<String>,
    /// How many times a worker started opening it.
    pub tries: u32,
    /// ms since the epoch, by the store's clock.
    pub updated_at: i64,
}

/// How a try to open a pull request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrOutcome {
    /// Opened (or found already open for the branch): its web address, also stored as
    /// the task's `pr_url`.
    Opened {
        url: String,
    },
    Failed {
        error: String,
    },
    Skipped {
        reason: String,
    },
}

impl PrOutcome {
    pub fn state(&self) -> PrState {
        match self {
            PrOutcome::Opened { .. } => PrState::Opened,
            PrOutcome::Failed { .. } => PrState::Failed,
            PrOutcome::Skipped { .. } => PrState::Skipped,
        }
    }

    /// The note stored as the record's `error`.
    pub fn note(&self) -> Option<&str> {
        match self {
            PrOutcome::Opened { .. } => None,
            PrOutcome::Failed { error } => Some(error),
            PrOutcome::Skipped { reason } => Some(reason),
        }
    }

    /// Whether the sealed token is still needed afterwards (only a failure may be
    /// retried with it).
    pub fn keeps_token(&self) -> bool {
        matches!(self, PrOutcome::Failed { .. })
    }
}
