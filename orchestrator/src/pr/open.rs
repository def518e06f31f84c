//! Opening a task's pull request: claim the record, push the branch, open the pull
//! request, store the outcome.

use serde_json::Value;

use super::git::{BranchSpec, commit_and_push};
use super::{PrOutcome, PullRequestRecord, PullRequests, github, repo_of};
use crate::blob::BlobError;
use crate::services::Services;
use crate::task::{InputSource, Task, TaskStatus};
use crate::worker::{clone_options, run_output_key, workspace_key};

/// The largest `diff.patch` turned into a pull request.
const MAX_DIFF_BYTES: u64 = 64 << 20;
/// The longest title taken from a task's description.
const MAX_TITLE_CHARS: usize = 100;

/// After a task finished (any way): opens the pull request it asked for, if any. Never
/// fails the caller: the outcome is stored on the record.
pub async fn after_run(services: &Services, task: &Task) {
    match services.store.pull_request(task.id).await {
        Ok(Some(_)) => {}
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(task_id = %task.id, error = %err, "cannot read the task's pull request; a retry opens it");
            return;
        }
    }
    let prs = match PullRequests::from_config(&services.config) {
        Ok(prs) => prs,
        Err(err) => {
            tracing::warn!(task_id = %task.id, error = %err, "pull requests are not usable on this server");
            return;
        }
    };
    open_for_task(services, &prs, task).await;
}

/// Claims `task`'s pull request record and opens it; the outcome, or `None` when there
/// was nothing to claim (none asked for, or someone else is opening it).
pub async fn open_for_task(
    services: &Services,
    prs: &PullRequests,
    task: &Task,
) -> Option<PrOutcome> {
    let stale = prs.config.stale_after();
    let record = match services.store.start_pull_request(task.id, stale).await {
        Ok(Some(record)) => record,
        Ok(None) => return None,
        Err(err) => {
            tracing::warn!(task_id = %task.id, error = %err, "cannot claim the task's pull request");
            return None;
        }
    };
    let limit = prs.config.timeout();
    let outcome = match tokio::time::timeout(limit, try_open(services, prs, task, &record)).await {
        Ok(outcome) => outcome,
        Err(_) => PrOutcome::Failed {
            error: format!(
                "pushing and opening the pull request took longer than {} s",
                limit.as_secs()
            ),
        },
    };
    match &outcome {
        PrOutcome::Opened { url } => {
            tracing::info!(task_id = %task.id, %url, "pull request opened");
        }
        PrOutcome::Failed { error } => {
            tracing::warn!(task_id = %task.id, %error, "pull request not opened");
        }
        PrOutcome::Skipped { reason } => {
            tracing::info!(task_id = %task.id, %reason, "pull request skipped");
        }
    }
    if let Err(err) = services.store.finish_pull_request(task.id, &outcome).await {
        tracing::warn!(task_id = %task.id, error = %err, "cannot record the pull request's outcome");
    }
    Some(outcome)
}

async fn try_open(
    services: &Services,
    prs: &PullRequests,
    task: &Task,
    record: &PullRequestRecord,
) -> PrOutcome {
    let failed = |error: String| PrOutcome::Failed { error };
    if task.status != TaskStatus::Completed {
        return PrOutcome::Skipped {
            reason: format!("the task did not complete (it is {})", task.status),
        };
    }
    let InputSource::Git { git_url, .. } = &task.input else {
        return PrOutcome::Skipped {
            reason: "a task made from a zip upload has no repository to push to".into(),
        };
    };
    let diff = match services
        .blobs
        .get_bytes(
            &run_output_key(task.id, task.result_run(), "diff.patch"),
            MAX_DIFF_BYTES,
        )
        .await
    {
        Ok(diff) => diff,
        Err(BlobError::NotFound(_)) => {
            return PrOutcome::Skipped {
                reason: "the agent left no diff.patch".into(),
            };
        }
        Err(err) => return failed(format!("cannot read the agent's diff.patch: {err}")),
    };
    if diff.iter().all(u8::is_ascii_whitespace) {
        return PrOutcome::Skipped {
            reason: "the agent changed nothing".into(),
        };
    }
    let Some(repo) = repo_of(git_url) else {
        return failed("the git URL names no owner/repository".into());
    };
    let token = match prs.token(&task.owner, record) {
        Ok(token) => token,
        Err(error) => return failed(error),
    };
    let client = match github::client(&prs.config.api_base, &token) {
        Ok(client) => client,
        Err(error) => return failed(error),
    };
    let base = match &record.ask.base {
        Some(base) => base.clone(),
        None => match github::default_branch(&client, &repo).await {
            Ok(base) => base,
            Err(error) => return failed(error),
        },
    };
    let branch = format!("{}{}", prs.config.branch_prefix, task.id);
    let title = title(task, record);
    if let Err(error) = push(services, task, git_url, &branch, &title, diff, token).await {
        return failed(error);
    }
    let body = body(task, link_base(prs));
    match github::open(&client, &repo, &branch, &base, &title, &body).await {
        Ok(url) => PrOutcome::Opened { url },
        Err(error) => failed(error),
    }
}

/// Commits the diff on the task's starting commit and pushes it as `branch`.
async fn push(
    services: &Services,
    task: &Task,
    git_url: &str,
    branch: &str,
    message: &str,
    diff: Vec<u8>,
    token: secrecy::SecretString,
) -> Result<String, String> {
    let opts = clone_options(&services.config.workspace).map_err(|err| err.to_string())?;
    let scratch_root = services.config.scratch_dir();
    tokio::fs::create_dir_all(&scratch_root)
        .await
        .map_err(|err| format!("cannot make a scratch folder: {err}"))?;
    let scratch = tempfile::Builder::new()
        .prefix(&format!("{}-pr-", task.id))
        .tempdir_in(&scratch_root)
        .map_err(|err| format!("cannot make a scratch folder: {err}"))?;
    let tarball = scratch.path().join("workspace.tar.gz");
    services
        .blobs
        .get_file(&workspace_key(task.id), &tarball)
        .await
        .map_err(|err| match err {
            BlobError::NotFound(_) => {
                "the task's workspace is gone (past its retention); start a new task".to_string()
            }
            other => format!("cannot read the task's workspace: {other}"),
        })?;
    let repo_dir = scratch.path().join("repo");
    let (url, branch, message) = (git_url.to_string(), branch.to_string(), message.to_string());
    let pushed = tokio::task::spawn_blocking(move || {
        let spec = BranchSpec {
            branch: &branch,
            message: &message,
            url: &url,
        };
        commit_and_push(&tarball, &repo_dir, &diff, &spec, Some(&token), &opts)
    })
    .await
    .map_err(|err| format!("pushing the branch crashed: {err}"))?;
    drop(scratch);
    pushed
}

fn title(task: &Task, record: &PullRequestRecord) -> String {
    if let Some(title) = record
        .ask
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return title.to_string();
    }
    let first = task
        .description
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("Changes by the coding agent");
    if first.chars().count() > MAX_TITLE_CHARS {
        let cut: String = first.chars().take(MAX_TITLE_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        first.to_string()
    }
}

fn link_base(prs: &PullRequests) -> Option<&str> {
    prs.config
        .task_link_base
        .as_deref()
        .map(|base| base.trim_end_matches('/'))
}

/// The agent's final message, the task's description, and a link back to the task.
fn body(task: &Task, link_base: Option<&str>) -> String {
    let final_message = task
        .result
        .as_ref()
        .and_then(|r| r.get("final_message"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let mut body = String::new();
    if let Some(message) = final_message {
        body.push_str(message);
        body.push_str("\n\n");
    }
    body.push_str("**Task**\n\n");
    for line in task.description.lines() {
        body.push_str("> ");
        body.push_str(line);
        body.push('\n');
    }
    body.push_str("\n---\n");
    match link_base {
        Some(base) => body.push_str(&format!(
            "Opened by the coding agent for task [{id}]({base}/api/v1/tasks/{id}).\n",
            id = task.id
        )),
        None => body.push_str(&format!(
            "Opened by the coding agent for task {}.\n",
            task.id
        )),
    }
    body
}
