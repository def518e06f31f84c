//! `edit_file_content`: replaces an exact piece of text in a file, or creates a file.
//!
//! Exact replacement is the edit a model gets right most often: it copies the lines it
//! read and writes what should be there. The tool holds it to that (one match, or
//! `replace_all`), and when the text is not there it says what is (see [`hint`]) rather
//! than guessing. The file is replaced atomically with its permissions kept, CRLF files
//! stay CRLF, and the answer shows the edited lines so the model can check the result
//! without reading the file again.

mod hint;
mod matching;
mod snippet;

use std::fs::Permissions;
use std::path::Path;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::FilesConfig;
use crate::error::ToolError;
use crate::redact::SecretRedactor;
use crate::text_file::{self, PathKind, count_newlines};
use crate::tool::{Tool, ToolContext, ToolOutput, parse_args, schema_for};
use snippet::push_snippet;

const TOOL_NAME: &str = "edit_file_content";
/// Edits shown with a snippet; the others are only listed by line.
const SNIPPETS_SHOWN: usize = 3;
/// Line numbers listed when `old_text` matches several times.
const MATCH_LINES_LISTED: usize = 20;

/// Arguments of `edit_file_content`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditFileArgs {
    /// Path of the file, relative to the workspace root.
    pub file_path: String,
    /// The exact text to replace, as it is in the file (whitespace included, without the
    /// line numbers read_file_content shows). Empty to create a new file.
    pub old_text: String,
    /// The text to put in its place (the whole content when creating a file).
    pub new_text: String,
    /// Replace every occurrence of old_text instead of requiring exactly one.
    #[serde(default)]
    pub replace_all: bool,
}

#[derive(Debug, Default)]
pub struct EditFileTool;

#[async_trait]
impl Tool for EditFileTool {
    fn name(&self) -> &'static str {
        TOOL_NAME
    }

    fn description(&self) -> &'static str {
        "Replace an exact piece of text in a file. old_text must match the file exactly \
         (whitespace included, no line numbers) and exactly once; include a few surrounding \
         lines to make it unique, or set replace_all to change every occurrence. With an empty \
         old_text, creates a new file (and its directories) holding new_text. Read the file \
         with read_file_content first. The answer shows the edited lines."
    }

    fn parameters(&self) -> serde_json::Value {
        schema_for::<EditFileArgs>()
    }

    fn mutates(&self) -> bool {
        true
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: EditFileArgs = parse_args(TOOL_NAME, args)?;
        if args.old_text == args.new_text {
            return Err(ToolError::InvalidArguments {
                tool: TOOL_NAME,
                message: "old_text and new_text are identical, so nothing would change; \
                          put the changed text in new_text"
                    .to_string(),
            });
        }
        let path = ctx.jail.resolve(&args.file_path)?;
        let display = ctx.jail.display(&path);
        let config = ctx.config.files.clone();
        let secrets = ctx.secrets.clone();
        let observer = ctx.write_observer.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(observer) = observer {
                observer.before_write(&path);
            }
            edit(&path, &display, args, &config, &secrets)
        })
        .await
        .map_err(|err| ToolError::Fatal(format!("{TOOL_NAME} worker failed: {err}")))?
    }
}

fn edit(
    path: &Path,
    display: &str,
    args: EditFileArgs,
    config: &FilesConfig,
    secrets: &SecretRedactor,
) -> Result<ToolOutput, ToolError> {
    let meta = match text_file::inspect(path)? {
        PathKind::File(meta) => meta,
        PathKind::Missing => {
            let args = restore_placeholders(args, "", secrets, display)?;
            return create(path, display, &args);
        }
        PathKind::Directory => return Err(text_file::directory_refusal(display)),
        PathKind::Special => return Err(text_file::special_file_refusal(display)),
    };
    if meta.len() > config.edit_max_file_bytes {
        return Err(ToolError::rejected(format!(
            "`{display}` is {}, larger than the {} this tool loads (edit_max_file_bytes). \
             Change it with run_shell_command instead (e.g. `sed -i`).",
            text_file::human_size(meta.len()),
            text_file::human_size(config.edit_max_file_bytes)
        )));
    }
    let bytes = std::fs::read(path).map_err(|err| ToolError::io("cannot read", display, err))?;
    if text_file::looks_binary(&bytes, true) {
        return Err(text_file::binary_refusal(display, meta.len()));
    }
    let content =
        String::from_utf8(bytes).map_err(|_| text_file::binary_refusal(display, meta.len()))?;
    let args = &restore_placeholders(args, &content, secrets, display)?;

    if args.old_text.is_empty() {
        if !content.is_empty() {
            return Err(ToolError::rejected(format!(
                "`{display}` already exists and is not empty. An empty old_text only creates a \
                 new file (or fills an empty one). To change this file, set old_text to the exact \
                 text to replace; read it first with read_file_content."
            )));
        }
        write(
            path,
            display,
            args.new_text.as_bytes(),
            Some(meta.permissions()),
        )?;
        return Ok(whole_file_written(display, &args.new_text, false));
    }

    let matches = match matching::find(&content, &args.old_text, &args.new_text) {
        matching::Search::Found(matches) => matches,
        matching::Search::NotFound => {
            return Err(ToolError::rejected(hint::no_match_message(
                display,
                &content,
                &args.old_text,
            )));
        }
    };
    if matches.offsets.len() > 1 && !args.replace_all {
        let lines = matching::line_numbers(content.as_bytes(), &matches.offsets);
        return Err(ToolError::rejected(several_matches_message(
            display, &lines,
        )));
    }

    let (edited, new_offsets) = matching::replace(content, &matches);
    write(path, display, edited.as_bytes(), Some(meta.permissions()))?;
    let lines = matching::line_numbers(edited.as_bytes(), &new_offsets);
    Ok(edit_summary(
        display,
        &edited,
        &new_offsets,
        &lines,
        &matches.new,
    ))
}

/// The arguments with the secret placeholders the model copied from redacted output put
/// back, when `file` (the current content) holds the secrets they stand for; see
/// [`crate::redact`]. The edit then matches the file as it really is.
fn restore_placeholders(
    args: EditFileArgs,
    file: &str,
    secrets: &SecretRedactor,
    display: &str,
) -> Result<EditFileArgs, ToolError> {
    if !secrets.has_placeholder(&args.old_text) && !secrets.has_placeholder(&args.new_text) {
        return Ok(args);
    }
    let refused = |err| ToolError::rejected(format!("cannot edit `{display}`: {err}"));
    Ok(EditFileArgs {
        old_text: secrets
            .restore_within(&args.old_text, file)
            .map_err(refused)?,
        new_text: secrets
            .restore_within(&args.new_text, file)
            .map_err(refused)?,
        ..args
    })
}

/// A missing file with an empty `old_text`: create it, and the directories above it.
fn create(path: &Path, display: &str, args: &EditFileArgs) -> Result<ToolOutput, ToolError> {
    if !args.old_text.is_empty() {
        return Err(ToolError::rejected(format!(
            "file `{display}` does not exist. To create it, call edit_file_content with an empty \
             old_text and the whole content as new_text; otherwise check the path with \
             list_directory."
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| ToolError::io("cannot create the directories for", display, err))?;
    }
    write(path, display, args.new_text.as_bytes(), None)?;
    Ok(whole_file_written(display, &args.new_text, true))
}

fn write(
    path: &Path,
    display: &str,
    contents: &[u8],
    permissions: Option<Permissions>,
) -> Result<(), ToolError> {
    text_file::write_atomically(path, contents, permissions)
        .map_err(|err| ToolError::io("cannot write", display, err))
}

fn several_matches_message(display: &str, lines: &[u64]) -> String {
    let listed: Vec<String> = lines
        .iter()
        .take(MATCH_LINES_LISTED)
        .map(u64::to_string)
        .collect();
    let more = lines.len().saturating_sub(MATCH_LINES_LISTED);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "old_text matches {} times in `{display}` (at lines {}{more}); it must match exactly \
         once. Add surrounding lines to old_text so it names one place, or set replace_all=true \
         to replace all {} occurrences.",
        lines.len(),
        listed.join(", "),
        lines.len()
    )
}

fn whole_file_written(display: &str, text: &str, created: bool) -> ToolOutput {
    let line_count = line_count(text);
    let verb = if created { "Created" } else { "Wrote" };
    let mut content = format!(
        "{verb} `{display}` ({line_count} line{}).\n",
        if line_count == 1 { "" } else { "s" }
    );
    push_snippet(&mut content, text, 0, 1, text);
    ToolOutput::success(content).with_details(serde_json::json!({
        "path": display,
        "created": created,
        "replacements": 0,
        "lines": [],
    }))
}

fn edit_summary(
    display: &str,
    edited: &str,
    new_offsets: &[usize],
    lines: &[u64],
    new_text: &str,
) -> ToolOutput {
    let count = lines.len();
    let listed: Vec<String> = lines.iter().map(u64::to_string).collect();
    let mut content = format!(
        "Edited `{display}`: {count} replacement{} at line{} {}.\n",
        if count == 1 { "" } else { "s" },
        if count == 1 { "" } else { "s" },
        listed.join(", ")
    );
    for (index, (&offset, &line)) in new_offsets.iter().zip(lines).enumerate() {
        if index == SNIPPETS_SHOWN {
            content.push_str(&format!(
                "[{} more edits not shown; read_file_content shows them.]\n",
                count - SNIPPETS_SHOWN
            ));
            break;
        }
        if index > 0 {
            content.push_str("…\n");
        }
        push_snippet(&mut content, edited, offset, line, new_text);
    }
    ToolOutput::success(content).with_details(serde_json::json!({
        "path": display,
        "created": false,
        "replacements": count,
        "lines": lines,
    }))
}

/// Lines in `text`, a last line without a line break included.
fn line_count(text: &str) -> u64 {
    let breaks = count_newlines(text.as_bytes()) as u64;
    if text.is_empty() || text.ends_with('\n') {
        breaks
    } else {
        breaks + 1
    }
}
