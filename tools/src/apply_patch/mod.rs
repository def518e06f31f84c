//! `apply_patch`: edits, creates, moves and deletes files with one patch in codex's format.
//!
//! Models trained on codex write this format fluently, and one call can touch many files.
//! The call goes in three steps: the whole patch is parsed ([`parser`]), every path in it
//! is resolved through the workspace jail, and only then are the operations applied in
//! order ([`apply`]), each update locating its hunks with forgiving matching ([`seek`],
//! [`update`]). A malformed patch or a path leaving the workspace changes nothing; a hunk
//! that does not match stops the patch there, leaving the earlier operations applied (as
//! codex does), and the error says which.

mod apply;
mod parser;
mod placeholders;
mod seek;
mod update;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::error::ToolError;
use crate::jail::{JailError, WorkspaceJail};
use crate::tool::{Tool, ToolContext, ToolOutput, parse_args, schema_for};

use apply::{AppliedChange, ApplyFailure, ChangeKind, ResolvedOp, apply_all};
use parser::{FileOp, parse_patch};
use seek::Fuzz;

const TOOL_NAME: &str = "apply_patch";

const DESCRIPTION: &str = "Create, update, move or delete files with a patch. `input` is the \
whole patch:\n\
*** Begin Patch\n\
*** Add File: path/new.txt\n\
+every line of the new file, each prefixed with +\n\
*** Delete File: path/old.txt\n\
*** Update File: path/file.py\n\
*** Move to: path/renamed.py   (optional, renames the file)\n\
@@ def some_function():   (optional: a line naming where the hunk is, to tell apart similar places)\n \
context line (prefix: one space)\n\
-removed line\n\
+added line\n \
context line\n\
*** End of File   (optional: the hunk's lines end the file)\n\
*** End Patch\n\
Give about 3 lines of context above and below each change, copied exactly from the file; \
start each further hunk of the same file with `@@`. Paths are relative to the workspace. \
Operations run in order; if one fails, the earlier ones stay applied.";

/// Arguments of `apply_patch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyPatchArgs {
    /// The whole patch, from `*** Begin Patch` to `*** End Patch`.
    pub input: String,
}

/// The `apply_patch` tool.
#[derive(Debug, Default)]
pub struct ApplyPatchTool;

#[async_trait]
impl Tool for ApplyPatchTool {
    fn name(&self) -> &'static str {
        TOOL_NAME
    }

    fn description(&self) -> &'static str {
        DESCRIPTION
    }

    fn parameters(&self) -> serde_json::Value {
        schema_for::<ApplyPatchArgs>()
    }

    fn mutates(&self) -> bool {
        true
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: ApplyPatchArgs = parse_args(TOOL_NAME, args)?;
        let patch = parse_patch(&args.input).map_err(|err| {
            ToolError::rejected(format!(
                "Could not parse the patch: {err}. Nothing was changed."
            ))
        })?;
        let ops = resolve_ops(&ctx.jail, patch.ops)?;
        let headers: Vec<String> = ops.iter().map(|op| op.op.header()).collect();
        let max_file_bytes = ctx.config.files.edit_max_file_bytes;
        let secrets = ctx.secrets.clone();
        let observer = ctx.write_observer.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let ops = placeholders::restore(ops, &secrets)?;
            if let Some(observer) = observer {
                for op in &ops {
                    observer.before_write(&op.target);
                    observer.before_write(&op.entry);
                    if let Some((dest, _)) = &op.move_to {
                        observer.before_write(dest);
                    }
                }
            }
            Ok::<_, ToolError>(apply_all(ops, max_file_bytes))
        })
        .await
        .map_err(|err| ToolError::Fatal(format!("apply_patch worker failed: {err}")))??;
        match outcome {
            Ok(changes) => {
                Ok(ToolOutput::success(summary(&changes)).with_details(details(&changes)))
            }
            Err(failure) => Err(ToolError::rejected(failure_message(&failure, &headers))),
        }
    }
}

/// Resolves every path of the patch through the jail, before anything is written.
fn resolve_ops(jail: &WorkspaceJail, ops: Vec<FileOp>) -> Result<Vec<ResolvedOp>, ToolError> {
    ops.into_iter()
        .map(|op| {
            let refused = |err: JailError| {
                ToolError::rejected(format!(
                    "Refused `{}` (patch line {}): {err}. Nothing was changed.",
                    op.header(),
                    op.line()
                ))
            };
            let target = jail.resolve(op.path()).map_err(refused)?;
            let entry = entry_path(jail, op.path(), &target).map_err(refused)?;
            let move_to = match &op {
                FileOp::Update {
                    move_to: Some(dest),
                    ..
                } => {
                    let dest = jail.resolve(dest).map_err(refused)?;
                    let shown = jail.display(&dest);
                    Some((dest, shown))
                }
                _ => None,
            };
            Ok(ResolvedOp {
                display: jail.display(&entry),
                op,
                target,
                entry,
                move_to,
            })
        })
        .collect()
}

/// The directory entry a path names, with only its parent directories resolved: deleting
/// or moving a symlink acts on the link, not on the file it points to.
fn entry_path(jail: &WorkspaceJail, requested: &str, target: &Path) -> Result<PathBuf, JailError> {
    let path = Path::new(requested);
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let dir = if parent.as_os_str().is_empty() {
                jail.root().to_path_buf()
            } else {
                jail.resolve(&parent.to_string_lossy())?
            };
            Ok(dir.join(name))
        }
        _ => Ok(target.to_path_buf()),
    }
}

/// Codex's summary: added, then modified, then deleted files.
fn summary(changes: &[AppliedChange]) -> String {
    let mut text = String::from("Success. Updated the following files:");
    for kind in [ChangeKind::Added, ChangeKind::Updated, ChangeKind::Deleted] {
        for change in changes.iter().filter(|change| change.kind == kind) {
            text.push('\n');
            text.push_str(&change_line(change));
        }
    }
    text
}

fn change_line(change: &AppliedChange) -> String {
    let letter = match change.kind {
        ChangeKind::Added => 'A',
        ChangeKind::Updated => 'M',
        ChangeKind::Deleted => 'D',
    };
    match &change.moved_from {
        Some(from) => format!("{letter} {} (moved from {from})", change.path),
        None => format!("{letter} {}", change.path),
    }
}

fn details(changes: &[AppliedChange]) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = changes
        .iter()
        .map(|change| {
            let kind = match change.kind {
                ChangeKind::Added => "add",
                ChangeKind::Updated => "update",
                ChangeKind::Deleted => "delete",
            };
            let matching = match change.fuzz {
                Fuzz::Exact => "exact",
                Fuzz::IgnoringTrailingWhitespace => "ignoring_trailing_whitespace",
                Fuzz::IgnoringSurroundingWhitespace => "ignoring_surrounding_whitespace",
                Fuzz::IgnoringPunctuationStyle => "ignoring_punctuation_style",
            };
            let mut value = serde_json::json!({
                "kind": kind,
                "path": change.path,
                "added_lines": change.added_lines,
                "removed_lines": change.removed_lines,
            });
            if change.kind == ChangeKind::Updated {
                value["matching"] = matching.into();
            }
            if let Some(from) = &change.moved_from {
                value["moved_from"] = from.clone().into();
            }
            value
        })
        .collect();
    serde_json::json!({ "changes": changes })
}

fn failure_message(failure: &ApplyFailure, headers: &[String]) -> String {
    let header = headers
        .get(failure.op_index - 1)
        .map(String::as_str)
        .unwrap_or_default();
    let mut text = format!(
        "Stopped at operation {} of {} (`{header}`, patch line {}): {}",
        failure.op_index,
        headers.len(),
        failure.patch_line,
        failure.error
    );
    if failure.applied.is_empty() {
        text.push_str("\nNothing was changed.");
    } else {
        text.push_str(
            "\nThe operations before it were applied and are on disk now (do not send them \
             again):",
        );
        for change in &failure.applied {
            text.push('\n');
            text.push_str(&change_line(change));
        }
    }
    if failure.op_index < headers.len() {
        text.push_str("\nThe operations after it were not applied.");
    }
    text
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
