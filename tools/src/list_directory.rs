//! `list_directory`: a tree view of part of the workspace, so a model can find its way
//! around before it reads or searches.
//!
//! It follows the same ignore rules as `search_code` (`.gitignore`, `.ignore`, `.git`
//! never shown; see [`crate::search_code`]), so `target/` or `node_modules/` do not bury
//! the files that matter. Unlike search, hidden entries (`.github/`, `.env.example`) are
//! shown: they are few and often what the model looks for. Symlinks are listed but never
//! followed. Depth and entry count are bounded so one call cannot flood the context.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::ToolError;
use crate::search_code::workspace_walker;
use crate::tool::{Tool, ToolContext, ToolOutput, parse_args, schema_for};

const TOOL_NAME: &str = "list_directory";
const DEFAULT_DEPTH: usize = 2;
/// Deeper trees are better explored one subdirectory at a time.
const MAX_DEPTH: usize = 10;

/// Lists a directory as an indented tree, honouring `.gitignore`.
#[derive(Debug, Default)]
pub struct ListDirectoryTool;

/// Arguments of `list_directory`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    /// Directory to list, relative to the workspace root. Defaults to `.`.
    #[serde(default)]
    path: Option<String>,
    /// How many levels to show: 1 lists direct children only. Defaults to 2, at most 10.
    #[serde(default)]
    depth: Option<usize>,
}

#[async_trait]
impl Tool for ListDirectoryTool {
    fn name(&self) -> &'static str {
        TOOL_NAME
    }

    fn description(&self) -> &'static str {
        "List a directory of the workspace as an indented tree (directories end with `/`, \
         symlinks show as `name -> (symlink)`), sorted by name. Entries ignored by \
         .gitignore/.ignore and the .git directory are left out. `depth` 1 lists direct \
         children only (default 2, at most 10)."
    }

    fn parameters(&self) -> serde_json::Value {
        schema_for::<ListArgs>()
    }

    fn mutates(&self) -> bool {
        false
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: ListArgs = parse_args(TOOL_NAME, args)?;
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || list(&ctx, &args))
            .await
            .map_err(|err| ToolError::Fatal(format!("{TOOL_NAME} worker failed: {err}")))?
    }
}

fn list(ctx: &ToolContext, args: &ListArgs) -> Result<ToolOutput, ToolError> {
    let depth = args.depth.unwrap_or(DEFAULT_DEPTH).clamp(1, MAX_DEPTH);
    let max_entries = ctx.config.search.list_max_entries;
    let dir = ctx.jail.resolve(args.path.as_deref().unwrap_or("."))?;
    let shown = ctx.jail.display(&dir);
    let metadata = std::fs::metadata(&dir).map_err(|err| ToolError::io("list", &shown, err))?;
    if !metadata.is_dir() {
        return Err(ToolError::rejected(format!(
            "`{shown}` is a file, not a directory; read it with read_file_content, or list \
             its parent directory"
        )));
    }

    let mut builder = workspace_walker(ctx.jail.root(), &dir);
    builder
        .hidden(false)
        .max_depth(Some(depth))
        .sort_by_file_name(|a, b| a.cmp(b));

    let mut text = if shown == "." {
        "./\n".to_string()
    } else {
        format!("{shown}/\n")
    };
    let mut listed = 0usize;
    let mut not_shown = 0usize;
    let mut unreadable = 0usize;
    for entry in builder.build() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(_) => {
                unreadable += 1;
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        if listed == max_entries {
            not_shown += 1;
            continue;
        }
        listed += 1;
        for _ in 1..entry.depth() {
            text.push_str("  ");
        }
        text.push_str(&entry.file_name().to_string_lossy());
        match entry.file_type() {
            Some(kind) if kind.is_symlink() => text.push_str(" -> (symlink)"),
            Some(kind) if kind.is_dir() => text.push('/'),
            _ => {}
        }
        text.push('\n');
    }

    if listed == 0 {
        text.push_str("(empty, or every entry is ignored by .gitignore/.ignore)\n");
    }
    if not_shown > 0 {
        text.push_str(&format!(
            "[... {not_shown} more entries not shown (limit {max_entries}); list a \
             subdirectory or use a smaller `depth`]\n"
        ));
    }
    if unreadable > 0 {
        text.push_str(&format!(
            "[{unreadable} entries could not be read and were skipped]\n"
        ));
    }
    let text = text.trim_end().to_string();
    Ok(ToolOutput::success(text).with_details(serde_json::json!({
        "entries": listed,
        "not_shown": not_shown,
        "depth": depth,
    })))
}

#[cfg(test)]
#[path = "list_directory_tests.rs"]
mod tests;
