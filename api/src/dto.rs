//! The shapes the API speaks, separate from the orchestrator's task model.
//!
//! The stored [`Task`] carries worker bookkeeping (runner handle, idempotency key) that
//! clients do not need; these types are the public contract, and they are what the
//! OpenAPI document describes.

use orchestrator::task::RunRecord;
use orchestrator::{InputSource, Task};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// The fields below state, as JSON Schema, what `crate::validate` enforces, so generated
// clients (and schemathesis) know it. Patterns are ECMA-262. White space is what Rust's
// `char::is_whitespace` (and so `str::trim`) counts: `\t\n\v\f\r`, space, U+0085,
// U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000; control
// characters are `char::is_control`'s (U+0000-U+001F, U+007F-U+009F). Lengths count
// characters. In a form, an optional field left blank counts as absent, so its pattern
// also accepts white space alone.

/// `POST /api/v1/tasks` as JSON: a task on a git repository.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// An `https://` or `git://` URL of a repository whose host is public (or allowed
    /// by the server's configuration), without credentials in it.
    #[schema(min_length = 1, pattern = r"^(?:https|git)://")]
    pub git_url: String,
    /// Branch, tag or commit; the default branch when absent.
    #[schema(
        max_length = 1024,
        pattern = r"^(?!-)(?!.*\.\.)[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000~^:?*\[\\]+$"
    )]
    pub git_ref: Option<String>,
    /// What the agent should do.
    #[schema(
        min_length = 1,
        max_length = 32768,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub description: String,
    /// A file to focus on, relative to the repository root.
    #[schema(
        max_length = 1024,
        pattern = r"^(?![/\\])(?!(?:.*[/\\])?\.\.(?:[/\\]|$))[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub target_file: Option<String>,
    #[schema(
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub model: Option<String>,
    #[schema(minimum = 1, maximum = 10000)]
    pub max_turns: Option<u32>,
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
    #[schema(minimum = 1, maximum = 604800)]
    pub timeout_secs: Option<u64>,
    /// Open a pull request with the changes once the run completed.
    pub pull_request: Option<PullRequestRequest>,
    /// Best-of-N: make this many independent attempts, each from the same starting
    /// code, and keep the best (at most the server's `max_attempts_per_task`, 5 by
    /// default). Absent: one.
    #[schema(minimum = 1)]
    pub attempts: Option<u32>,
    /// A command run (`bash -c`, under the agent's sandbox) in each attempt's final
    /// workspace, e.g. `python -m pytest -q`: exit code 0 passes. It ranks the
    /// attempts; the best passing one becomes the task's diff (and its pull request).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    )]
    pub check: Option<String>,
    /// A setup script (run with `bash -c` in the workspace before the agent, in every
    /// run of the task): it has the network, the agent's commands after it do not. Its
    /// output is the `setup.log` artifact; when it fails the task fails with its tail.
    #[schema(
        max_length = 65536,
        pattern = r"^[^\x00]*[^\x00\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub setup: Option<String>,
}

/// A pull request to open with a task's changes (at submission, or later through
/// `POST /api/v1/tasks/{id}/pull-request`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequestRequest {
    /// The branch to merge into; the repository's default branch when absent.
    #[schema(
        max_length = 255,
        pattern = r"^(?!-)(?!.*\.\.)[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000~^:?*\[\\]+$"
    )]
    pub base: Option<String>,
    /// The title; the description's first line when absent.
    #[schema(
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: Option<String>,
    /// A token that may push to the repository and open pull requests on it; needed
    /// unless the server has one for your owner. Kept encrypted, only until the pull
    /// request is open; never shown again, never given to the agent.
    #[schema(min_length = 1, max_length = 1024, pattern = r"^[!-~]+$")]
    pub github_token: Option<String>,
}

/// Where a task's pull request is.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequestView {
    /// `REQUESTED` (waiting for the run), `OPENING`, `OPENED` (see the task's `pr_url`),
    /// `FAILED` (see `error`; retry with `POST .../pull-request`) or `SKIPPED` (the run
    /// did not complete, or changed nothing).
    pub state: String,
    pub base: Option<String>,
    pub title: Option<String>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// How many times opening it was tried.
    pub tries: u32,
    /// Milliseconds since the Unix epoch.
    pub updated_at: i64,
}

impl From<orchestrator::pr::PullRequestRecord> for PullRequestView {
    fn from(record: orchestrator::pr::PullRequestRecord) -> Self {
        Self {
            state: record.state.as_str().to_string(),
            base: record.ask.base,
            title: record.ask.title,
            error: record.error,
            tries: record.tries,
            updated_at: record.updated_at,
        }
    }
}

/// `POST /api/v1/tasks` as `multipart/form-data`: the same fields as text parts, with
/// either `git_url` or a `zip_file` part. Other parts are refused.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CreateTaskMultipart {
    /// A zip archive of the repository (no entry escaping the root, no links).
    #[schema(format = Binary, value_type = Option<String>)]
    pub zip_file: Option<Vec<u8>>,
    /// As in the JSON body; blank counts as absent.
    #[schema(
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|(?:https|git)://.*)$"
    )]
    pub git_url: Option<String>,
    #[schema(
        max_length = 1024,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|(?!-)(?!.*\.\.)[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000~^:?*\[\\]+)$"
    )]
    pub git_ref: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 32768,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub description: String,
    #[schema(
        max_length = 1024,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|(?![/\\])(?!(?:.*[/\\])?\.\.(?:[/\\]|$))[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*)$"
    )]
    pub target_file: Option<String>,
    #[schema(
        max_length = 1024,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*)$"
    )]
    pub model: Option<String>,
    #[schema(minimum = 1, maximum = 10000)]
    pub max_turns: Option<u32>,
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
    #[schema(minimum = 1, maximum = 604800)]
    pub timeout_secs: Option<u64>,
    /// As in the JSON body; blank counts as absent.
    #[schema(max_length = 65536, pattern = r"^[^\x00]*$")]
    pub setup: Option<String>,
    /// `true` asks for a pull request (so do the three fields below).
    #[schema(
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[Tt][Rr][Uu][Ee][\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)$"
    )]
    pub pull_request: Option<String>,
    /// As `pull_request.base` in the JSON body; blank counts as absent.
    #[schema(
        max_length = 255,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|(?!-)(?!.*\.\.)[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000~^:?*\[\\]+)$"
    )]
    pub pull_request_base: Option<String>,
    /// As `pull_request.title`; blank counts as absent.
    #[schema(
        max_length = 256,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*)$"
    )]
    pub pull_request_title: Option<String>,
    /// As `pull_request.github_token`; blank counts as absent.
    #[schema(
        max_length = 1024,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|[!-~]+)$"
    )]
    pub github_token: Option<String>,
    /// As in the JSON body.
    #[schema(minimum = 1)]
    pub attempts: Option<u32>,
    /// As in the JSON body; blank counts as absent.
    #[schema(
        max_length = 4096,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*)$"
    )]
    pub check: Option<String>,
}

/// Where a task's code comes from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InputView {
    Git {
        git_url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        git_ref: Option<String>,
    },
    Zip {
        zip_name: String,
    },
}

/// A task as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    /// `PENDING`, `QUEUED`, `PROCESSING`, `DOWNLOADING_CODE`, `RUNNING_AGENT`,
    /// `UPLOADING_RESULTS`, `COMPLETED`, `FAILED` or `CANCELLED`.
    pub status: String,
    pub input: InputView,
    pub description: String,
    pub target_file: Option<String>,
    pub model: Option<String>,
    pub max_turns: Option<u32>,
    pub max_tokens: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub message: Option<String>,
    pub pr_url: Option<String>,
    /// Why the task's pull request could not be opened (the task itself stays
    /// `COMPLETED` with its diff); `POST .../pull-request` tries again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_error: Option<String>,
    /// The pull request the task asked for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestView>,
    pub attempt: u32,
    /// The agent's `result.json`, once finished.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub deadline_at: Option<i64>,
    /// Which run the status, message and result are of, from 1; each follow-up
    /// message starts the next (`GET /api/v1/tasks/{id}/runs` lists them all).
    pub run_number: u32,
    /// The current run's follow-up message; absent for the first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<String>,
    /// Best-of-N: how many attempts the task makes (1: the ordinary task). Its runs are
    /// then its attempts (`GET /api/v1/tasks/{id}/attempts`).
    pub attempts: u32,
    /// The check that ranks the attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The attempt whose outputs are the task's (its artifacts, its pull request), once
    /// every attempt ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen_attempt: Option<u32>,
    /// The task's setup script, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
}

impl TaskView {
    /// With the task's pull request record.
    pub fn with_pull_request(
        mut self,
        record: Option<orchestrator::pr::PullRequestRecord>,
    ) -> Self {
        if let Some(record) = record {
            if record.state == orchestrator::pr::PrState::Failed {
                self.pr_error = record.error.clone();
            }
            self.pull_request = Some(record.into());
        }
        self
    }
}

impl From<Task> for TaskView {
    fn from(task: Task) -> Self {
        let input = match task.input {
            // Rows stored before URLs with credentials were refused may still hold them.
            InputSource::Git { git_url, git_ref } => InputView::Git {
                git_url: orchestrator::workspace::redact_url(&git_url),
                git_ref,
            },
            InputSource::Zip { zip_name, .. } => InputView::Zip { zip_name },
        };
        Self {
            id: task.id.to_string(),
            status: task.status.as_str().to_string(),
            input,
            description: task.description,
            target_file: task.target_file,
            model: task.model,
            max_turns: task.limits.max_turns,
            max_tokens: task.limits.max_tokens,
            timeout_secs: task.limits.timeout_secs,
            message: task.message,
            pr_url: task.pr_url,
            pr_error: None,
            pull_request: None,
            attempt: task.attempt,
            result: task.result,
            created_at: task.created_at,
            updated_at: task.updated_at,
            deadline_at: task.deadline_at,
            run_number: task.run_number,
            follow_up: task.follow_up,
            attempts: task.best_of.attempts,
            check: task.best_of.check,
            chosen_attempt: task.chosen_run,
            setup: task.setup,
        }
    }
}

/// `POST /api/v1/tasks/{id}/messages`: what the agent should do next, continuing from
/// where the task's last run left the code and the conversation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRequest {
    #[schema(
        min_length = 1,
        max_length = 32768,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub message: String,
}

/// One run of a task.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// From 1, in order.
    pub run_number: u32,
    /// The description for the first run, the follow-up message for later ones.
    pub instruction: String,
    /// The run's status (a past run's is final: `COMPLETED` or `FAILED`).
    pub status: String,
    pub message: Option<String>,
    /// The run's `result.json`, once finished.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// When the next run took over (ms since the epoch); absent for the current run.
    pub finished_at: Option<i64>,
    /// Whether this is the task's current run (the one its own routes show).
    pub current: bool,
}

impl From<RunRecord> for RunView {
    fn from(run: RunRecord) -> Self {
        Self {
            run_number: run.run_number,
            instruction: run.instruction,
            status: run.status.as_str().to_string(),
            message: run.message,
            result: run.result,
            finished_at: Some(run.finished_at),
            current: false,
        }
    }
}

impl RunView {
    /// The run the task row holds now.
    pub fn current(task: &Task) -> Self {
        Self {
            run_number: task.run_number,
            instruction: task.instruction().to_string(),
            status: task.status.as_str().to_string(),
            message: task.message.clone(),
            result: task.result.clone(),
            finished_at: None,
            current: true,
        }
    }
}

/// A task's runs, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunView>,
}

/// One attempt of a best-of-N task.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// From 1; also its run number (`.../runs/{n}/artifacts/diff.patch` is its diff).
    pub attempt: u32,
    /// `COMPLETED` or `FAILED` once it ended; the task's live status while it runs;
    /// `PENDING` while it waits for the ones before it.
    pub status: String,
    pub message: Option<String>,
    /// Whether it counts as a success: its check passed, or with no check, the agent
    /// completed. Absent until it ended.
    pub passed: Option<bool>,
    /// The check's verdict and output tail, from its `result.json`.
    #[schema(value_type = Option<Object>)]
    pub check: Option<serde_json::Value>,
    /// Files its diff changes.
    pub files_changed: Option<u64>,
    pub total_tokens: Option<u64>,
    /// Whether its outputs are the task's.
    pub chosen: bool,
    /// Its `result.json`, once ended.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// A best-of-N task's attempts side by side, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    /// How many attempts the task makes.
    pub attempts_asked: u32,
    pub check: Option<String>,
    pub attempts: Vec<AttemptView>,
    /// The attempt whose outputs are the task's, once every attempt ended.
    pub chosen: Option<u32>,
    /// How many ended attempts passed.
    pub passed: u32,
    /// The unbiased pass@k over the ended attempts, k from 1 to their number (the eval
    /// harness's estimator), keyed by k.
    pub pass_at_k: std::collections::BTreeMap<String, f64>,
}

/// One page of tasks, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<TaskView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /api/task`'s answer (the original API).
#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyCreated {
    pub task_id: String,
    pub status: String,
}

/// `GET /api/task/{id}/status`'s answer (the original API).
#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyStatus {
    pub task_id: String,
    pub status: String,
    pub message: Option<String>,
    pub pr_url: Option<String>,
}

/// `POST /api/task` as `multipart/form-data` or a urlencoded form (the original API).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LegacyCreateForm {
    /// Either this or `zip_file`; blank counts as absent.
    #[schema(
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|(?:https|git)://.*)$"
    )]
    pub git_url: Option<String>,
    #[schema(format = Binary, value_type = Option<String>)]
    pub zip_file: Option<Vec<u8>>,
    #[schema(
        min_length = 1,
        max_length = 32768,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub task_description: String,
    #[schema(
        max_length = 1024,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|(?![/\\])(?!(?:.*[/\\])?\.\.(?:[/\\]|$))[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*)$"
    )]
    pub target_file: Option<String>,
    /// A token that may push to the repository: a pull request is opened with the
    /// changes once the run completed. Kept encrypted, never shown again.
    #[schema(
        max_length = 1024,
        pattern = r"^(?:[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|[!-~]+)$"
    )]
    pub github_token: Option<String>,
}
