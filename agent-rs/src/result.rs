//! `result.json`: how a run ended, in a shape scripts and the orchestrator read.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::events::{LimitKind, RunStatus, Timing};
use crate::exit;
use crate::model::Usage;
use crate::process_usage::ProcessUsage;
use crate::run::RunOutcome;
use crate::workspace_diff::LeftOut;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunResult {
    pub status: RunStatus,
    /// Which limit ended the run, when one did.
    pub limit: Option<LimitKind>,
    pub turns: u32,
    pub usage: Usage,
    pub duration_ms: u64,
    /// Where the time went (model, tools, the rest), to the microsecond.
    pub timing: Timing,
    pub final_message: Option<String>,
    pub model: String,
    pub error: Option<String>,
    /// The process exit code this result maps to.
    pub exit_code: u8,
    /// Files touched by the diff, when one was written.
    pub files_changed: Option<usize>,
    /// What the agent process itself cost (CPU, peak memory), its commands apart.
    pub process: ProcessUsage,
    /// Changes `diff.patch` does not carry, and why (it applies without them). Empty when
    /// the patch holds every change.
    #[serde(default)]
    pub diff_left_out: Vec<LeftOut>,
    /// Secrets `diff.patch` holds, by the placeholder they are shown as (or the kind of
    /// credential an added line looks like). The patch is never rewritten, so that it
    /// applies; review it before sharing it.
    #[serde(default)]
    pub diff_secrets: Vec<String>,
    /// Repositories in the workspace whose config or hooks were set during the run to
    /// run commands (`core.fsmonitor`, hooks, filter drivers...), which the user's next
    /// `git status` would run outside the sandbox; those settings were taken out.
    #[serde(default)]
    pub git_hazards_disarmed: Vec<LeftOut>,
    /// The sandbox shell commands ran in (mode, network, process cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<tools::SandboxSummary>,
    /// For a resumed run: files touched by this run's own changes (`step.patch`);
    /// `files_changed` then counts the cumulative diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_files_changed: Option<usize>,
    /// How the setup phase ended, when the run had one (its output is in `setup.log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<SetupSummary>,
    /// The check run in the final workspace (`--check`, `AGENT_CHECK`), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<crate::check::CheckReport>,
}

/// The setup phase's ending, for scripts that tell a failed setup from a failed task.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SetupSummary {
    pub success: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
}

impl RunResult {
    pub fn from_outcome(outcome: &RunOutcome, model: &str) -> Self {
        Self {
            status: outcome.status,
            limit: outcome.limit,
            turns: outcome.turns,
            usage: outcome.usage,
            duration_ms: outcome.duration.as_millis() as u64,
            timing: outcome.timing,
            final_message: outcome.final_message.clone(),
            model: model.to_string(),
            error: outcome.error.clone(),
            exit_code: exit_code(outcome.status),
            files_changed: None,
            process: ProcessUsage::default(),
            diff_left_out: Vec::new(),
            diff_secrets: Vec::new(),
            git_hazards_disarmed: Vec::new(),
            sandbox: None,
            step_files_changed: None,
            setup: None,
            check: None,
        }
    }

    /// The lines that tell a person reading stderr what `diff.patch` leaves out and
    /// which secrets it holds.
    pub fn diff_warnings(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .diff_left_out
            .iter()
            .map(|left| format!("diff.patch leaves out {}: {}", left.path, left.reason))
            .collect();
        lines.extend(self.git_hazards_disarmed.iter().map(|hazard| {
            format!(
                "git settings disarmed in {}: {}",
                hazard.path, hazard.reason
            )
        }));
        if !self.diff_secrets.is_empty() {
            lines.push(format!(
                "diff.patch holds secrets ({}); it is written as it is so that it applies: \
                 review it before sharing it",
                self.diff_secrets.join(", ")
            ));
        }
        lines
    }
}

/// The exit code of a run that got as far as the loop.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => exit::COMPLETED,
        RunStatus::LimitReached | RunStatus::Stuck => exit::LIMIT_REACHED,
        RunStatus::ModelError => exit::MODEL_FAILED,
        RunStatus::Error => exit::OTHER_ERROR,
    }
}
