//! `read_file_content`: shows a text file, or a range of its lines, with line numbers.
//!
//! The model reads files to decide what to edit, so the output numbers lines the way the
//! edit tools report them. A model asking for a huge file gets the part that fits under
//! the configured caps and an exact instruction for reading on, never an overflowing
//! context. The file is streamed: showing 20 lines of a 50 MB file reads up to those lines
//! and then only counts the remaining line breaks, so the model learns the file's length.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::FilesConfig;
use crate::error::ToolError;
use crate::text_file::{self, PathKind};
use crate::tool::{Tool, ToolContext, ToolOutput, parse_args, schema_for};

const TOOL_NAME: &str = "read_file_content";

/// Arguments of `read_file_content`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// Path of the file, relative to the workspace root.
    pub file_path: String,
    /// First line to show (1-based). Defaults to 1.
    #[serde(default)]
    pub start_line: Option<u64>,
    /// Last line to show (1-based, inclusive). Defaults to the end of the file.
    #[serde(default)]
    pub end_line: Option<u64>,
}

#[derive(Debug, Default)]
pub struct ReadFileTool;

#[async_trait]
impl Tool for ReadFileTool {
    fn name(&self) -> &'static str {
        TOOL_NAME
    }

    fn description(&self) -> &'static str {
        "Read a UTF-8 text file, or a range of its lines, shown with line numbers \
         (number, tab, line; the numbers are not part of the file). Large files are cut at a \
         size cap and the output says how to read on with start_line/end_line. Binary files \
         are refused. Use list_directory or search_code to find files first."
    }

    fn parameters(&self) -> serde_json::Value {
        schema_for::<ReadFileArgs>()
    }

    fn mutates(&self) -> bool {
        false
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: ReadFileArgs = parse_args(TOOL_NAME, args)?;
        let range = LineRange::from_args(&args)?;
        let path = ctx.jail.resolve(&args.file_path)?;
        let display = ctx.jail.display(&path);
        let config = ctx.config.files.clone();
        tokio::task::spawn_blocking(move || read_range(&path, &display, range, &config))
            .await
            .map_err(|err| ToolError::Fatal(format!("{TOOL_NAME} worker failed: {err}")))?
    }
}

/// The lines asked for, already checked.
#[derive(Debug, Clone, Copy)]
struct LineRange {
    start: u64,
    end: Option<u64>,
}

impl LineRange {
    fn from_args(args: &ReadFileArgs) -> Result<Self, ToolError> {
        let invalid = |message: String| ToolError::InvalidArguments {
            tool: TOOL_NAME,
            message,
        };
        if args.start_line == Some(0) || args.end_line == Some(0) {
            return Err(invalid(
                "line numbers start at 1; 0 is not a line number".to_string(),
            ));
        }
        let start = args.start_line.unwrap_or(1);
        if let Some(end) = args.end_line
            && start > end
        {
            return Err(invalid(format!(
                "start_line ({start}) is after end_line ({end}); give start_line <= end_line"
            )));
        }
        Ok(Self {
            start,
            end: args.end_line,
        })
    }
}

/// Lines gathered for the answer, and why gathering stopped.
struct Shown {
    text: String,
    first: u64,
    last: u64,
    /// The next line to ask for, when a cap cut the range short.
    resume_at: Option<u64>,
    /// A line shown only in part because it alone is over the byte cap.
    cut_line: Option<(u64, usize)>,
}

fn read_range(
    path: &Path,
    display: &str,
    range: LineRange,
    config: &FilesConfig,
) -> Result<ToolOutput, ToolError> {
    let size = match text_file::inspect(path)? {
        PathKind::File(meta) => meta.len(),
        PathKind::Missing => {
            return Err(ToolError::rejected(format!(
                "file `{display}` does not exist. Use list_directory (or search_code) to find \
                 the right path."
            )));
        }
        PathKind::Directory => return Err(text_file::directory_refusal(display)),
        PathKind::Special => return Err(text_file::special_file_refusal(display)),
    };
    let io_err = |err| ToolError::io("cannot read", display, err);
    let mut file = File::open(path).map_err(io_err)?;

    let mut head = Vec::with_capacity(text_file::BINARY_SNIFF_BYTES);
    (&mut file)
        .take(text_file::BINARY_SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    if text_file::looks_binary(&head, head.len() as u64 >= size) {
        return Err(text_file::binary_refusal(display, size));
    }
    let crlf = text_file::LineEnding::detect(&head) == text_file::LineEnding::CrLf;
    file.rewind().map_err(io_err)?;

    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let (shown, lines_read, at_eof) = collect_lines(&mut reader, display, size, range, config)?;
    let total = if at_eof {
        lines_read
    } else {
        lines_read + text_file::count_remaining_lines(&mut reader).map_err(io_err)?
    };

    let Some(shown) = shown else {
        if total == 0 && range.start == 1 {
            return Ok(
                ToolOutput::success(format!("`{display}` is empty (0 lines)."))
                    .with_details(details(display, 0, 0, 0, false)),
            );
        }
        return Err(ToolError::rejected(format!(
            "start_line {} is beyond the end of the file: `{display}` has {total} line{}.",
            range.start,
            plural(total)
        )));
    };
    Ok(render(display, &shown, total, crlf, config))
}

/// Streams the file up to the end of the range or a cap. Returns the lines shown (`None`
/// when the range starts past the end), the number of lines consumed, and whether the end
/// of the file was reached.
fn collect_lines(
    reader: &mut BufReader<File>,
    display: &str,
    size: u64,
    range: LineRange,
    config: &FilesConfig,
) -> Result<(Option<Shown>, u64, bool), ToolError> {
    let max_lines = config.read_max_lines.max(1) as u64;
    let max_bytes = config.read_max_bytes.max(1);
    let last_wanted = range
        .end
        .unwrap_or(u64::MAX)
        .min(range.start.saturating_add(max_lines - 1));
    // A file has at most one line per byte, which keeps small files' numbers narrow.
    let width = text_file::number_width(last_wanted.min(size.max(1)));

    let mut shown: Option<Shown> = None;
    let mut line_buf = Vec::new();
    let mut number = 0u64;
    let mut budget = max_bytes;
    loop {
        let keep = if number + 1 >= range.start { budget } else { 0 };
        let Some(length) = text_file::read_line_capped(reader, &mut line_buf, keep)
            .map_err(|err| ToolError::io("cannot read", display, err))?
        else {
            return Ok((shown, number, true));
        };
        number += 1;
        if number < range.start {
            continue;
        }
        let state = shown.get_or_insert_with(|| Shown {
            text: String::new(),
            first: number,
            last: number,
            resume_at: None,
            cut_line: None,
        });
        if number > last_wanted {
            // One line past the range: it only tells us the range was cut by a cap.
            if range.end.is_none_or(|end| number <= end) {
                state.resume_at = Some(number);
            }
            return Ok((shown, number, false));
        }
        let whole = length <= budget;
        let text = if whole {
            std::str::from_utf8(&line_buf).map_err(|_| text_file::binary_refusal(display, size))?
        } else if state.text.is_empty() {
            // A single line larger than the cap: show its start rather than nothing.
            let valid = match std::str::from_utf8(&line_buf) {
                Ok(text) => text.len(),
                Err(err) if err.error_len().is_none() => err.valid_up_to(),
                Err(_) => return Err(text_file::binary_refusal(display, size)),
            };
            state.cut_line = Some((number, length));
            std::str::from_utf8(&line_buf[..valid]).unwrap_or_default()
        } else {
            state.resume_at = Some(number);
            return Ok((shown, number, false));
        };
        text_file::push_numbered_line(&mut state.text, number, width, text);
        state.last = number;
        budget = budget.saturating_sub(length + 1);
        if !whole {
            let wanted_more = range.end.is_none_or(|end| number < end);
            if wanted_more {
                state.resume_at = Some(number + 1);
            }
            return Ok((shown, number, false));
        }
    }
}

fn render(
    display: &str,
    shown: &Shown,
    total: u64,
    crlf: bool,
    config: &FilesConfig,
) -> ToolOutput {
    let endings = if crlf { ", CRLF line endings" } else { "" };
    let whole_file = shown.first == 1 && shown.last == total && shown.cut_line.is_none();
    let mut content = if whole_file {
        format!("`{display}` ({total} line{}{endings}):\n", plural(total))
    } else {
        format!(
            "`{display}` lines {}-{} of {total}{endings}:\n",
            shown.first, shown.last
        )
    };
    content.push_str(&shown.text);
    if let Some((number, length)) = shown.cut_line {
        content.push_str(&format!(
            "[line {number} is {length} bytes long; only its first {} bytes are shown \
             (read_max_bytes). Use run_shell_command (e.g. `cut -c`, `fold`) to see the rest of it.]\n",
            config.read_max_bytes
        ));
    }
    if let Some(next) = shown.resume_at {
        content.push_str(&format!(
            "[showing lines {}-{} of {total} (cap: {} lines or {} bytes per call); call again \
             with start_line={next} to read on.]\n",
            shown.first, shown.last, config.read_max_lines, config.read_max_bytes
        ));
    }
    let truncated = shown.resume_at.is_some() || shown.cut_line.is_some();
    ToolOutput::success(content).with_details(details(
        display,
        shown.first,
        shown.last,
        total,
        truncated,
    ))
}

fn details(display: &str, first: u64, last: u64, total: u64, truncated: bool) -> serde_json::Value {
    serde_json::json!({
        "path": display,
        "start_line": first,
        "end_line": last,
        "total_lines": total,
        "truncated": truncated,
    })
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}
