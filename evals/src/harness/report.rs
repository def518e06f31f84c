//! What a run measured: one record per attempt, grouped by task, with totals.
//!
//! `report.json` is the machine-readable record (`evals compare` and `evals swebench
//! export` read it back, so every field added later must be optional); `report.md` and
//! `junit.xml` are rendered from it by [`super::render`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::task::Expected;

/// Two pass rates this close are equal (`--check-expected`).
pub const RATE_TOLERANCE: f64 = 1e-9;

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub suite: String,
    /// `scripted`, the `--model` name, or `(agent default)`.
    pub model: String,
    pub scripted: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub repeat: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_pass_rate: Option<f64>,
    pub tasks: Vec<TaskReport>,
    pub totals: Totals,
}

/// One task's attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub id: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub expected: Option<Expected>,
    pub passed: u32,
    pub pass_rate: f64,
    /// With `--repeat` above 1: the attempt the service's best-of-N would keep (the
    /// `attempts` crate's ranking: passing first, then completed, then cheapest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_attempt: Option<u32>,
    pub attempts: Vec<AttemptRecord>,
}

/// One attempt: a fresh workspace, the agent, the check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub task_id: String,
    /// 1-based.
    pub attempt: u32,
    pub passed: bool,
    /// Why the attempt failed; `None` when it passed.
    #[serde(default)]
    pub reason: Option<String>,
    /// `None` when the agent did not run or was killed.
    #[serde(default)]
    pub agent_exit_code: Option<i32>,
    /// `status` from the agent's `result.json`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub turns: Option<u32>,
    #[serde(default)]
    pub tokens: Option<TokenCounts>,
    /// The agent process's wall time, as the harness measured it.
    #[serde(default)]
    pub agent_duration_ms: u64,
    #[serde(default)]
    pub check_exit_code: Option<i32>,
    #[serde(default)]
    pub check_duration_ms: Option<u64>,
    #[serde(default)]
    pub expected: Option<Expected>,
    /// When the attempt started and finished, in ms since the run started.
    #[serde(default)]
    pub started_ms: u64,
    #[serde(default)]
    pub finished_ms: u64,
    /// The attempt's output folder, relative to the report.
    #[serde(default)]
    pub output_dir: String,
}

impl AttemptRecord {
    pub fn total_tokens(&self) -> u64 {
        self.tokens.map_or(0, |tokens| tokens.total_tokens)
    }

    /// The attempt as the shared ranking sees it: the eval's verdict is its check.
    pub fn candidate(&self) -> attempts::Candidate {
        attempts::Candidate {
            number: self.attempt,
            completed: self.status.as_deref() == Some("completed"),
            check_passed: Some(self.passed),
            changed: true,
            tokens: self.total_tokens(),
        }
    }
}

fn candidates(records: &[AttemptRecord]) -> Vec<attempts::Candidate> {
    records.iter().map(AttemptRecord::candidate).collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Sums over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub tasks: u32,
    pub attempts: u32,
    pub passed: u32,
    /// `passed / attempts` (0 when nothing ran).
    pub pass_rate: f64,
    /// With `--repeat` above 1: the unbiased pass@k for every k up to the repeat count,
    /// keyed by k, averaged over tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_at_k: Option<BTreeMap<u32, f64>>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub turns: u64,
    pub agent_time_ms: u64,
    pub check_time_ms: u64,
    pub wall_time_ms: u64,
}

/// What the run was, apart from its attempts.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub suite: String,
    pub model: String,
    pub scripted: bool,
    pub started_at: String,
    pub repeat: u32,
    pub filter: Option<String>,
    pub expected_pass_rate: Option<f64>,
    pub wall_time_ms: u64,
}

impl Report {
    /// Groups attempts by task (in `task_order`) and sums them up.
    pub fn build(
        info: RunInfo,
        task_order: &[(String, Vec<String>, Option<Expected>)],
        mut attempts: Vec<AttemptRecord>,
    ) -> Self {
        attempts.sort_by_key(|record| record.attempt);
        let tasks: Vec<TaskReport> = task_order
            .iter()
            .map(|(id, tags, expected)| {
                let attempts: Vec<AttemptRecord> = attempts
                    .iter()
                    .filter(|record| &record.task_id == id)
                    .cloned()
                    .collect();
                let passed = count_passed(&attempts);
                let best_attempt = (info.repeat > 1)
                    .then(|| attempts::best(&candidates(&attempts)))
                    .flatten();
                TaskReport {
                    id: id.clone(),
                    tags: tags.clone(),
                    expected: *expected,
                    passed,
                    pass_rate: ratio(passed, attempts.len()),
                    best_attempt,
                    attempts,
                }
            })
            .collect();
        let all: Vec<&AttemptRecord> = tasks.iter().flat_map(|task| &task.attempts).collect();
        let passed = all.iter().filter(|record| record.passed).count();
        let sum = |field: fn(&AttemptRecord) -> u64| all.iter().map(|record| field(record)).sum();
        let totals = Totals {
            tasks: count(tasks.len()),
            attempts: count(all.len()),
            passed: count(passed),
            pass_rate: ratio(count(passed), all.len()),
            pass_at_k: (info.repeat > 1).then(|| pass_at_k_table(&tasks, info.repeat)),
            prompt_tokens: sum(|r| r.tokens.map_or(0, |t| t.prompt_tokens)),
            completion_tokens: sum(|r| r.tokens.map_or(0, |t| t.completion_tokens)),
            total_tokens: sum(AttemptRecord::total_tokens),
            turns: sum(|r| r.turns.map_or(0, u64::from)),
            agent_time_ms: sum(|r| r.agent_duration_ms),
            check_time_ms: sum(|r| r.check_duration_ms.unwrap_or(0)),
            wall_time_ms: info.wall_time_ms,
        };
        Self {
            suite: info.suite,
            model: info.model,
            scripted: info.scripted,
            started_at: info.started_at,
            repeat: info.repeat,
            filter: info.filter,
            expected_pass_rate: info.expected_pass_rate,
            tasks,
            totals,
        }
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read report {}: {err}", path.display()))?;
        serde_json::from_str(&text).map_err(|err| {
            format!(
                "{} is not a report.json written by `evals run`: {err}",
                path.display()
            )
        })
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Where the run differs from what the suite expects (`--check-expected`): every
    /// attempt whose outcome is not its task's `expected`, and the pass rate against
    /// `expected_pass_rate` (skipped under `--filter`, which changes the denominator).
    pub fn expectation_mismatches(&self) -> Vec<String> {
        let mut mismatches: Vec<String> = self
            .tasks
            .iter()
            .flat_map(|task| &task.attempts)
            .filter_map(|record| {
                let expected = record.expected?;
                (expected.is_pass() != record.passed).then(|| {
                    let got = if record.passed { "pass" } else { "fail" };
                    let why = record
                        .reason
                        .as_deref()
                        .map(|reason| format!(" ({reason})"))
                        .unwrap_or_default();
                    format!(
                        "task {} attempt {}: expected {expected}, got {got}{why}",
                        record.task_id, record.attempt
                    )
                })
            })
            .collect();
        if let Some(expected) = self.expected_pass_rate
            && self.filter.is_none()
            && (self.totals.pass_rate - expected).abs() > RATE_TOLERANCE
        {
            mismatches.push(format!(
                "pass rate {:.4} differs from suite.toml expected_pass_rate {expected:.4}",
                self.totals.pass_rate
            ));
        }
        mismatches
    }
}

/// The unbiased pass@k of one task (Chen et al. 2021): the service's best-of-N uses the
/// same estimator and the same notion of a passing attempt (the `attempts` crate).
pub use attempts::pass_at_k;

fn pass_at_k_table(tasks: &[TaskReport], repeat: u32) -> BTreeMap<u32, f64> {
    (1..=repeat)
        .map(|k| {
            let scores: Vec<f64> = tasks
                .iter()
                .filter(|task| count(task.attempts.len()) >= k)
                .map(|task| {
                    let candidates = candidates(&task.attempts);
                    pass_at_k(
                        count(candidates.len()),
                        attempts::passed_count(&candidates),
                        k,
                    )
                })
                .collect();
            let mean = if scores.is_empty() {
                0.0
            } else {
                scores.iter().sum::<f64>() / scores.len() as f64
            };
            (k, mean)
        })
        .collect()
}

fn count_passed(attempts: &[AttemptRecord]) -> u32 {
    count(attempts.iter().filter(|record| record.passed).count())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn ratio(passed: u32, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        f64::from(passed) / total as f64
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
