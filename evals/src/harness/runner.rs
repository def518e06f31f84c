//! `evals run`: every selected task, `--repeat` times, at most `--parallel` attempts at
//! once, then the reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use globset::Glob;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::attempt::{AttemptContext, AttemptPlan, ModelSource, run_attempt};
use super::render;
use super::report::{AttemptRecord, Report, RunInfo};
use super::task::{Suite, SuiteError};
use super::workspace::GitCache;

/// How to run a suite.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub model: ModelSource,
    pub parallel: usize,
    pub out_dir: PathBuf,
    pub filter: Option<String>,
    pub repeat: u32,
    pub agent_bin: PathBuf,
    pub kill_grace: Duration,
}

/// Why a run could not happen (as opposed to attempts that failed, which are results).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// 2 for mistakes in the suite or the command line, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Suite(_) | RunError::Usage(_) => 2,
            RunError::Write { .. } => 1,
        }
    }
}

/// Runs the suite and writes `report.json`, `report.md` and `junit.xml` into
/// `options.out_dir`.
pub async fn run_suite(suite: &Suite, options: &RunOptions) -> Result<Report, RunError> {
    if options.parallel == 0 || options.repeat == 0 {
        return Err(RunError::Usage(
            "--parallel and --repeat must be at least 1".to_owned(),
        ));
    }
    let selected = select_tasks(suite, options.filter.as_deref())?;
    let scripted = matches!(options.model, ModelSource::Scripted);
    let mut plans = Vec::new();
    for task in &selected {
        let script = if scripted { task.script()? } else { None };
        for attempt in 1..=options.repeat {
            plans.push(AttemptPlan {
                task: Arc::clone(task),
                attempt,
                script: script.clone(),
            });
        }
    }
    let out_dir = absolute(&options.out_dir);
    std::fs::create_dir_all(out_dir.join("tasks")).map_err(|source| RunError::Write {
        path: out_dir.join("tasks"),
        source,
    })?;
    let git_cache = GitCache::new().map_err(|source| RunError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let started_at = jiff::Timestamp::now().to_string();
    let ctx = Arc::new(AttemptContext {
        agent_bin: options.agent_bin.clone(),
        model: options.model.clone(),
        out_dir: out_dir.clone(),
        kill_grace: options.kill_grace,
        repeat: options.repeat,
        git_cache,
        run_started: Instant::now(),
    });

    let limit = Arc::new(Semaphore::new(options.parallel));
    let mut running = JoinSet::new();
    for plan in plans {
        let ctx = Arc::clone(&ctx);
        let limit = Arc::clone(&limit);
        running.spawn(async move {
            // The semaphore is never closed, so acquiring only fails if it were.
            let _permit = limit.acquire_owned().await.ok();
            let started_ms = millis_since(ctx.run_started);
            let mut record = run_attempt(&ctx, &plan).await;
            record.started_ms = started_ms;
            record.finished_ms = millis_since(ctx.run_started);
            tracing::info!(
                task = %record.task_id,
                attempt = record.attempt,
                passed = record.passed,
                reason = record.reason.as_deref().unwrap_or(""),
                "attempt finished"
            );
            record
        });
    }
    let mut records: Vec<AttemptRecord> = Vec::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(record) => records.push(record),
            Err(err) => tracing::error!(%err, "an attempt task panicked"),
        }
    }

    let info = RunInfo {
        suite: suite.name.clone(),
        model: match &options.model {
            ModelSource::Scripted => "scripted".to_owned(),
            ModelSource::Live { model: Some(model) } => model.clone(),
            ModelSource::Live { model: None } => "(agent default)".to_owned(),
        },
        scripted,
        started_at,
        repeat: options.repeat,
        filter: options.filter.clone(),
        expected_pass_rate: suite.file.expected_pass_rate,
        wall_time_ms: millis_since(ctx.run_started),
    };
    let order: Vec<_> = selected
        .iter()
        .map(|task| (task.id.clone(), task.file.tags.clone(), task.file.expected))
        .collect();
    let report = Report::build(info, &order, records);
    write_reports(&report, &out_dir)?;
    Ok(report)
}

/// Writes the three report files.
pub fn write_reports(report: &Report, out_dir: &Path) -> Result<(), RunError> {
    let json = report.to_json().map_err(|err| RunError::Write {
        path: out_dir.join("report.json"),
        source: std::io::Error::other(err),
    })?;
    for (name, text) in [
        ("report.json", json),
        ("report.md", render::markdown(report)),
        ("junit.xml", render::junit(report)),
    ] {
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(|source| RunError::Write { path, source })?;
    }
    Ok(())
}

/// Tasks whose id matches `filter`: a glob when it holds `*`, `?` or `[`, else a
/// substring; a tag equal to the filter also selects a task.
fn select_tasks(
    suite: &Suite,
    filter: Option<&str>,
) -> Result<Vec<Arc<super::task::Task>>, RunError> {
    let Some(filter) = filter else {
        return Ok(suite.tasks.iter().cloned().map(Arc::new).collect());
    };
    let matches: Box<dyn Fn(&str) -> bool> = if filter.contains(['*', '?', '[']) {
        let glob = Glob::new(filter)
            .map_err(|err| RunError::Usage(format!("--filter {filter}: not a valid glob: {err}")))?
            .compile_matcher();
        Box::new(move |id| glob.is_match(id))
    } else {
        Box::new(|id| id.contains(filter))
    };
    let selected: Vec<_> = suite
        .tasks
        .iter()
        .filter(|task| matches(&task.id) || task.file.tags.iter().any(|tag| tag == filter))
        .cloned()
        .map(Arc::new)
        .collect();
    if selected.is_empty() {
        let ids: Vec<&str> = suite.tasks.iter().map(|task| task.id.as_str()).collect();
        return Err(RunError::Usage(format!(
            "--filter {filter} matches no task of suite {} (tasks: {})",
            suite.name,
            ids.join(", ")
        )));
    }
    Ok(selected)
}

/// Default `--out`: `evals-out/<UTC timestamp>`.
pub fn default_out_dir() -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    PathBuf::from("evals-out").join(stamp)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
