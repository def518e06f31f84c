//! One attempt at one task: fresh workspace, the `agent-rs` program (running the task's
//! setup first, sandboxed as its commands are but with the network), the hidden
//! check files, the check. Every way it can go wrong ends as a failed
//! [`AttemptRecord`] with a reason, never as an error of the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::process::Command;

use super::process::{Bounded, redirect_output, run_bounded, shell_command};
use super::report::{AttemptRecord, TokenCounts};
use super::task::Task;
use super::workspace::{GitCache, copy_tree};
use crate::scripted::{Script, ScriptedServer};

/// Where the agent's model comes from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A scripted server per attempt, playing the task's `script.json`.
    Scripted,
    /// The environment's `OPENAI_BASE_URL` / `OPENAI_API_KEY`; `model` becomes
    /// `AGENT_MODEL` when given.
    Live { model: Option<String> },
}

/// What every attempt of a run shares.
#[derive(Debug)]
pub struct AttemptContext {
    pub agent_bin: PathBuf,
    pub model: ModelSource,
    pub out_dir: PathBuf,
    /// Added to a task's `timeout_secs` before the harness kills the agent (the agent
    /// stops itself at `timeout_secs` and then writes its outputs).
    pub kill_grace: Duration,
    pub repeat: u32,
    pub git_cache: GitCache,
    pub run_started: Instant,
}

/// The agent's `result.json`, read leniently: fields the agent adds later are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AgentResult {
    status: Option<String>,
    limit: Option<String>,
    turns: Option<u32>,
    usage: Option<TokenCounts>,
    setup: Option<SetupResult>,
}

/// `result.json`'s `setup`: how the task's setup ended.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SetupResult {
    success: bool,
    exit_code: Option<i32>,
    timed_out: bool,
}

/// The attempt's reason when its setup failed (the model was not called).
fn setup_failure(setup: &SetupResult, limit: Duration) -> String {
    if setup.timed_out {
        return format!("setup timed out (killed after {} s)", limit.as_secs());
    }
    match setup.exit_code {
        Some(code) => format!("setup failed (exit {code}; see setup.log)"),
        None => "setup failed (killed by a signal; see setup.log)".to_string(),
    }
}

/// One attempt to run; `script` is the parsed `script.json` under `--scripted`.
pub struct AttemptPlan {
    pub task: Arc<Task>,
    pub attempt: u32,
    pub script: Option<Script>,
}

/// Runs the attempt; `started_ms`/`finished_ms` are filled in by the caller.
pub async fn run_attempt(ctx: &AttemptContext, plan: &AttemptPlan) -> AttemptRecord {
    let task = &plan.task;
    let folder = if ctx.repeat > 1 {
        format!("{}-{}", task.id, plan.attempt)
    } else {
        task.id.clone()
    };
    let mut record = AttemptRecord {
        task_id: task.id.clone(),
        attempt: plan.attempt,
        expected: task.file.expected,
        output_dir: format!("tasks/{folder}"),
        ..AttemptRecord::default()
    };
    let out = ctx.out_dir.join("tasks").join(&folder);
    if let Err(reason) = attempt_steps(ctx, plan, &out, &mut record).await {
        record.passed = false;
        record.reason = Some(reason);
    }
    record
}

/// The attempt's steps; `Err` is the reason it failed before a check verdict.
async fn attempt_steps(
    ctx: &AttemptContext,
    plan: &AttemptPlan,
    out: &Path,
    record: &mut AttemptRecord,
) -> Result<(), String> {
    let task = &plan.task;
    fresh_dir(out)
        .map_err(|err| format!("cannot create output folder {}: {err}", out.display()))?;
    let server = match (&ctx.model, &plan.script) {
        (ModelSource::Scripted, None) => return Err("no script".to_owned()),
        (ModelSource::Scripted, Some(script)) => Some(
            ScriptedServer::start(script.clone())
                .await
                .map_err(|err| format!("scripted server failed to start: {err}"))?,
        ),
        (ModelSource::Live { .. }, _) => None,
    };
    let workspace = tempfile::Builder::new()
        .prefix("evals-ws-")
        .tempdir()
        .map_err(|err| format!("cannot create a workspace folder: {err}"))?;
    let ws = workspace.path();
    ctx.git_cache
        .prepare(&task.id, &task.repo, ws)
        .await
        .map_err(|err| format!("workspace preparation failed: {err}"))?;

    let agent_limit = Duration::from_secs(task.file.limits.timeout_secs());
    // The setup runs inside the agent's run, before the model: with the same sandbox as
    // the agent's commands but the network on, its output in setup.log (see
    // `agent_rs::setup`). It gets the agent's time limit again.
    let setup_limit = task.file.setup.as_ref().map(|_| agent_limit);
    let mut command = agent_command(ctx, task, ws, out, server.as_ref(), setup_limit)?;
    let kill_at = agent_limit + setup_limit.unwrap_or_default() + ctx.kill_grace;
    let agent = run_bounded(&mut command, kill_at)
        .await
        .map_err(|err| format!("agent could not start ({}): {err}", ctx.agent_bin.display()));
    if let Some(server) = server {
        let _ = server.shutdown().await;
    }
    let agent = agent?;
    record.agent_duration_ms = millis(agent.duration);
    if agent.timed_out {
        return Err(format!(
            "agent timed out (killed after {} s)",
            kill_at.as_secs()
        ));
    }
    record.agent_exit_code = agent.status.code();
    let result = read_agent_result(out);
    if let Some(result) = &result {
        record.status.clone_from(&result.status);
        record.limit.clone_from(&result.limit);
        record.turns = result.turns;
        record.tokens = result.usage;
    }
    if let Some(setup) = result.as_ref().and_then(|r| r.setup.as_ref())
        && !setup.success
    {
        return Err(setup_failure(setup, setup_limit.unwrap_or_default()));
    }
    let agent_note = agent_trouble(&agent, result.as_ref());

    if let Some(check_dir) = &task.check_dir {
        copy_tree(check_dir, ws).map_err(|err| format!("cannot copy check/ files: {err}"))?;
    }
    let check_limit = Duration::from_secs(task.file.limits.check_timeout_secs());
    let mut command = shell_command(&task.file.check, ws, &out.join("check.log"))
        .map_err(|err| format!("cannot write check.log: {err}"))?;
    let check = run_bounded(&mut command, check_limit)
        .await
        .map_err(|err| format!("check could not run: cannot run bash: {err}"))?;
    record.check_duration_ms = Some(millis(check.duration));
    record.check_exit_code = check.status.code();
    record.passed = check.succeeded();
    if !record.passed {
        let verdict = if check.timed_out {
            format!("check timed out (killed after {} s)", check_limit.as_secs())
        } else {
            format!("check failed ({})", check.describe_exit())
        };
        record.reason = Some(match agent_note {
            Some(note) => format!("{verdict}; {note}"),
            None => verdict,
        });
    }
    Ok(())
}

fn agent_command(
    ctx: &AttemptContext,
    task: &Task,
    ws: &Path,
    out: &Path,
    server: Option<&ScriptedServer>,
    setup_limit: Option<Duration>,
) -> Result<Command, String> {
    let limits = &task.file.limits;
    let mut command = Command::new(&ctx.agent_bin);
    command
        .arg("run")
        .arg("--dir")
        .arg(ws)
        .arg("--output")
        .arg(out)
        .arg("--timeout")
        .arg(limits.timeout_secs().to_string());
    if let Some(max_turns) = limits.max_turns {
        command.arg("--max-turns").arg(max_turns.to_string());
    }
    if let Some(max_tokens) = limits.max_tokens {
        command.arg("--max-tokens").arg(max_tokens.to_string());
    }
    if let Some(target) = &task.file.target_file {
        command.arg("--target-file").arg(target);
    }
    if let (Some(setup), Some(limit)) = (&task.file.setup, setup_limit) {
        command
            .arg("--setup")
            .arg(setup)
            .arg("--setup-timeout")
            .arg(limit.as_secs().max(1).to_string());
    }
    command.arg("--").arg(&task.file.instruction);
    match (&ctx.model, server) {
        (ModelSource::Scripted, Some(server)) => {
            command
                .env("OPENAI_BASE_URL", server.base_url())
                .env("AGENT_MODEL", &server.script().model)
                .env_remove("OPENAI_API_KEY");
        }
        (ModelSource::Live { model: Some(model) }, _) => {
            command.env("AGENT_MODEL", model);
        }
        _ => {}
    }
    redirect_output(
        &mut command,
        &out.join("agent.stdout"),
        &out.join("agent.stderr"),
    )
    .map_err(|err| format!("cannot write agent.stdout/agent.stderr: {err}"))?;
    Ok(command)
}

/// A note on an agent that did not complete, added to a failed check's reason.
fn agent_trouble(agent: &Bounded, result: Option<&AgentResult>) -> Option<String> {
    if agent.status.success() {
        return None;
    }
    let exit = agent.describe_exit();
    Some(match result.and_then(|r| r.status.as_deref()) {
        Some(status) => match result.and_then(|r| r.limit.as_deref()) {
            Some(limit) => format!("agent {exit} ({status}: {limit})"),
            None => format!("agent {exit} ({status})"),
        },
        None => format!("agent {exit} (no result.json; see agent.stderr)"),
    })
}

fn read_agent_result(out: &Path) -> Option<AgentResult> {
    let text = std::fs::read_to_string(out.join("result.json")).ok()?;
    match serde_json::from_str(&text) {
        Ok(result) => Some(result),
        Err(err) => {
            tracing::warn!(path = %out.join("result.json").display(), %err, "unreadable result.json");
            None
        }
    }
}

/// An empty folder at `path`, clearing what an earlier run left there.
fn fresh_dir(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        std::fs::remove_dir_all(path)?;
    }
    std::fs::create_dir_all(path)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
