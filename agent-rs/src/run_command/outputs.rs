//! What a run leaves behind once the loop is over: `diff.patch` (and a resumed run's
//! `step.patch`), the check's verdict, and `result.json`.

use std::time::Duration;

use tools::SecretRedactor;

use crate::check::CheckContext;
use crate::output_dir::{self, OutputDir};
use crate::result::{RunResult, SetupSummary};
use crate::resume::Baselines;
use crate::run::RunOutcome;
use crate::workspace_diff::WorkspaceSnapshot;

/// How the run went, for `result.json`.
pub(super) struct Finished<'a> {
    pub outcome: &'a RunOutcome,
    pub model_name: &'a str,
    pub sandbox_summary: tools::SandboxSummary,
    pub setup_summary: Option<SetupSummary>,
    pub baselines: &'a Baselines,
    pub resumed: bool,
}

/// Writes the diff(s), runs the check when there is one (`command`, its time limit and
/// context), and writes `result.json`; returns the result.
pub(super) async fn write_outputs(
    finished: Finished<'_>,
    check: Option<(&str, Duration, CheckContext<'_>)>,
    output: &OutputDir,
    redactor: &SecretRedactor,
) -> anyhow::Result<RunResult> {
    let mut result = RunResult::from_outcome(finished.outcome, finished.model_name);
    result.sandbox = Some(finished.sandbox_summary);
    result.setup = finished.setup_summary;
    write_diff(&finished.baselines.base, output, redactor, &mut result)?;
    if finished.resumed {
        write_step_diff(&finished.baselines.step, output, &mut result)?;
    }
    // After the diff: what the check leaves in the workspace is not the agent's change.
    if let Some((command, timeout, ctx)) = check {
        result.check = Some(crate::check::run(command, timeout, &ctx).await);
    }
    result.process = crate::process_usage::ProcessUsage::now();
    output.write(
        output_dir::RESULT_FILE,
        redactor
            .redact(&serde_json::to_string_pretty(&result)?)
            .as_bytes(),
    )?;
    Ok(result)
}

/// Writes `diff.patch` as it is (a redacted patch would not apply) and records in the
/// result what it leaves out and which secrets it holds.
fn write_diff(
    snapshot: &WorkspaceSnapshot,
    output: &OutputDir,
    redactor: &SecretRedactor,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    let diff = match snapshot.diff() {
        Ok(diff) => diff,
        Err(err) => {
            tracing::error!(%err, "diff failed");
            result
                .error
                .get_or_insert_with(|| format!("could not compute the diff: {err}"));
            return Ok(());
        }
    };
    output.write(output_dir::DIFF_FILE, diff.patch.as_bytes())?;
    result.files_changed = Some(diff.files_changed);
    result.diff_secrets = secrets_in_patch(&diff.patch, redactor);
    result.diff_left_out = diff.left_out;
    result.git_hazards_disarmed =
        crate::git_hazards::disarm(snapshot.root(), snapshot.started(), snapshot.git_baseline());
    for warning in result.diff_warnings() {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// Writes `step.patch`, a resumed run's own changes; its failure is recorded as the
/// cumulative diff's is.
fn write_step_diff(
    snapshot: &WorkspaceSnapshot,
    output: &OutputDir,
    result: &mut RunResult,
) -> anyhow::Result<()> {
    match snapshot.diff() {
        Ok(diff) => {
            output.write(output_dir::STEP_DIFF_FILE, diff.patch.as_bytes())?;
            result.step_files_changed = Some(diff.files_changed);
        }
        Err(err) => {
            tracing::error!(%err, "step diff failed");
            result
                .error
                .get_or_insert_with(|| format!("could not compute this step's diff: {err}"));
        }
    }
    Ok(())
}

/// The secrets a patch holds: the known values anywhere in it (by placeholder), then the
/// kinds of credentials its added lines look like.
fn secrets_in_patch(patch: &str, redactor: &SecretRedactor) -> Vec<String> {
    let mut found = redactor.secrets_in(patch);
    let added: String = patch
        .lines()
        .filter(|line| line.starts_with('+') && !line.starts_with("+++"))
        .map(|line| format!("{}\n", redactor.redact(line)))
        .collect();
    found.extend(
        tools::redact::known_formats_in(&added)
            .into_iter()
            .map(|kind| format!("what looks like a {kind} on an added line")),
    );
    found
}
