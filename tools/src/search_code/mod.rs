//! `search_code`: a regex search over the workspace, the way ripgrep does it.
//!
//! A model explores an unfamiliar repository mostly by searching it, so this tool must be
//! fast on large trees and must not drown the model in vendored, generated or build
//! files. It is built from ripgrep's own crates: `ignore` walks the tree in parallel
//! following `.gitignore`/`.ignore` and skipping hidden files (see [`walk`]), and
//! `grep-searcher` scans each file with a `grep-regex` matcher. Results come back as
//! `path:line:text` lines, sorted, capped, with a summary line the model can act on.

mod format;
mod walk;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use ignore::overrides::{Override, OverrideBuilder};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::ToolError;
use crate::tool::{Tool, ToolContext, ToolOutput, parse_args, schema_for};

pub(crate) use walk::workspace_walker;

const TOOL_NAME: &str = "search_code";

/// Searches file contents with a regular expression, honouring `.gitignore`.
#[derive(Debug, Default)]
pub struct SearchCodeTool;

/// Arguments of `search_code`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// Regular expression (Rust `regex` syntax, like ripgrep), matched line by line.
    pattern: String,
    /// Directory or file to search, relative to the workspace root. Defaults to `.`.
    #[serde(default)]
    path: Option<String>,
    /// File filter: gitignore-style globs relative to the workspace root, separated by
    /// commas or spaces; `!` excludes. Examples: `*.rs`, `*.{ts,tsx}`, `src/**, !src/gen/**`.
    #[serde(default)]
    glob: Option<String>,
    /// Match letters regardless of case.
    #[serde(default)]
    case_insensitive: bool,
    /// Most matching lines to return.
    #[serde(default)]
    max_results: Option<usize>,
}

#[async_trait]
impl Tool for SearchCodeTool {
    fn name(&self) -> &'static str {
        TOOL_NAME
    }

    fn description(&self) -> &'static str {
        "Search file contents in the workspace with a regular expression (ripgrep syntax). \
         Returns matching lines as `path:line:text`, sorted by path and line. Files ignored \
         by .gitignore/.ignore, hidden files and binary files are skipped. Use `path` to \
         search one directory or file, `glob` to filter file names (e.g. `*.rs`), and \
         `case_insensitive` for case-blind matching. Results are capped at `max_results`."
    }

    fn parameters(&self) -> serde_json::Value {
        schema_for::<SearchArgs>()
    }

    fn mutates(&self) -> bool {
        false
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: SearchArgs = parse_args(TOOL_NAME, args)?;
        let ctx = ctx.clone();
        // The walk and the scan are blocking, CPU-bound work on their own thread pool.
        tokio::task::spawn_blocking(move || search(&ctx, &args))
            .await
            .map_err(|err| ToolError::Fatal(format!("{TOOL_NAME} worker failed: {err}")))?
    }
}

/// What one search asks for, after validation.
struct SearchPlan {
    matcher: RegexMatcher,
    overrides: Override,
    /// Matching lines to show; the walk stops once one more than this is found.
    max_results: usize,
    max_line_chars: usize,
    threads: usize,
}

fn search(ctx: &ToolContext, args: &SearchArgs) -> Result<ToolOutput, ToolError> {
    let config = &ctx.config.search;
    let matcher = build_matcher(&args.pattern, args.case_insensitive)?;
    let overrides = build_overrides(ctx.jail.root(), args.glob.as_deref())?;
    let max_results = args
        .max_results
        .unwrap_or(config.default_max_results)
        .clamp(1, config.max_results_cap.max(1));

    let requested = args.path.as_deref().unwrap_or(".");
    let target = ctx.jail.resolve(requested)?;
    let shown = ctx.jail.display(&target);
    let metadata =
        std::fs::metadata(&target).map_err(|err| ToolError::io("search", &shown, err))?;

    let plan = SearchPlan {
        matcher,
        overrides,
        max_results,
        max_line_chars: config.max_line_chars,
        threads: config.threads,
    };
    let found = if metadata.is_file() {
        walk::search_one_file(&plan, &target)
    } else {
        walk::search_tree(&plan, ctx.jail.root(), &target)
    };
    Ok(format::render(
        &ctx.jail,
        &args.pattern,
        &shown,
        &plan,
        found,
    ))
}

fn build_matcher(pattern: &str, case_insensitive: bool) -> Result<RegexMatcher, ToolError> {
    if pattern.is_empty() {
        return Err(ToolError::InvalidArguments {
            tool: TOOL_NAME,
            message: "`pattern` is empty; give a regular expression to search for".into(),
        });
    }
    RegexMatcherBuilder::new()
        .case_insensitive(case_insensitive)
        // Lines are the unit of search: the regex engine can then skip whole lines fast.
        .line_terminator(Some(b'\n'))
        // A NUL byte marks a file as binary and stops its search, so it can never match.
        .ban_byte(Some(b'\0'))
        .build(pattern)
        .map_err(|err| ToolError::InvalidArguments {
            tool: TOOL_NAME,
            message: format!(
                "`pattern` is not a valid regular expression (Rust regex syntax; escape \
                 literal characters such as `(` or `.` with `\\`): {err}"
            ),
        })
}

/// Builds the `glob` filter. Globs are matched against paths relative to the workspace
/// root, the same paths the results show.
fn build_overrides(root: &Path, glob: Option<&str>) -> Result<Override, ToolError> {
    let Some(glob) = glob else {
        return Ok(Override::empty());
    };
    let invalid = |message: String| ToolError::InvalidArguments {
        tool: TOOL_NAME,
        message,
    };
    let mut builder = OverrideBuilder::new(root);
    let mut any = false;
    for item in split_globs(glob) {
        builder
            .add(item)
            .map_err(|err| invalid(format!("`glob` entry `{item}` is not a valid glob: {err}")))?;
        any = true;
    }
    if !any {
        return Ok(Override::empty());
    }
    builder
        .build()
        .map_err(|err| invalid(format!("`glob` is not valid: {err}")))
}

/// Splits a glob list on commas and whitespace, except inside `{...}` alternations
/// (`*.{rs,toml}` is one glob).
fn split_globs(list: &str) -> impl Iterator<Item = &str> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, ch) in list.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' | ' ' | '\t' | '\n' if depth == 0 => {
                items.push(&list[start..index]);
                start = index + ch.len_utf8();
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    items.into_iter().filter(|item| !item.is_empty())
}

/// Everything a search found, before rendering.
struct Found {
    /// Files with at least one match, in no particular order.
    files: Vec<FileMatches>,
    /// Whether more matching lines exist than `max_results` (the walk stopped early).
    capped: bool,
    /// Entries that could not be read (permissions, vanished files, bad ignore files).
    unreadable: usize,
    /// Set when the only file searched was skipped as binary.
    skipped_binary: bool,
}

/// The matching lines of one file, in line order.
struct FileMatches {
    path: PathBuf,
    lines: Vec<MatchedLine>,
}

struct MatchedLine {
    number: u64,
    text: String,
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
