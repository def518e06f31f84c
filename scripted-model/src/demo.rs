//! The demo session: a short but real piece of work the scripted model plays for any task,
//! so `api --demo` lets a newcomer watch the whole path (queue, workspace, agent, tools,
//! diff) without a model key.
//!
//! A fixed script cannot do this: it knows nothing of the files in the zip or repository a
//! user submits, and one script is shared by every task. The demo instead reads each
//! request's conversation and answers with the next step of the same plan, so any number
//! of tasks run side by side, each with its own session:
//!
//! 1. list the workspace (`list_directory`);
//! 2. read a file it shows (`read_file_content`): the shallowest source file, else
//!    markup, else plain text (never JSON, lock files or binaries);
//! 3. add a one-line comment to it (`edit_file_content`, anchored on a line that occurs
//!    once), or, when there is no file to edit or the edit fails, create
//!    [`DEMO_NOTE_FILE`];
//! 4. finish with a message saying what it did and that this was the demo model.
//!
//! Every answer is a real tool call the agent runs in the task's workspace, so the
//! timeline, the artifacts and the diff are the ones a real model would leave.

use serde_json::{Value, json};

use super::script::{ScriptedToolCall, Step};

/// The file the demo creates when it finds nothing it can edit.
pub const DEMO_NOTE_FILE: &str = "DEMO_NOTE.md";
/// The model name the demo server reports.
pub const DEMO_MODEL: &str = "demo";
/// Lines the demo reads from the chosen file: enough to find an anchor for the edit.
const READ_LINES: u64 = 80;
/// What the added comment says (within the file's own comment syntax).
const NOTE: &str = "Note added by the agent-rs demo model (api --demo).";

/// The demo's plan, decided from a chat request alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoSession {
    /// Waits before each answer, so a person watching the page sees each turn arrive.
    pub pause_ms: u64,
}

impl DemoSession {
    /// The step answering `request` (a Chat Completions request body).
    pub fn next_step(&self, request: &Value) -> Step {
        let step = plan(request);
        if self.pause_ms == 0 {
            step
        } else {
            Step::Delay {
                ms: self.pause_ms,
                then: Box::new(step),
            }
        }
    }
}

/// The last tool call the conversation holds, with what it returned.
struct LastCall {
    name: String,
    arguments: Value,
    result: Option<String>,
}

impl LastCall {
    fn failed(&self) -> bool {
        self.result
            .as_deref()
            .is_none_or(|text| text.trim_start().starts_with("error:"))
    }

    fn file_path(&self) -> Option<&str> {
        self.arguments.get("file_path").and_then(Value::as_str)
    }
}

fn plan(request: &Value) -> Step {
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(last) = last_call(messages) else {
        return call(
            "I'll look around the workspace first.",
            "list_directory",
            json!({"path": ".", "depth": 2}),
        );
    };
    match last.name.as_str() {
        "list_directory" => match last.result.as_deref().and_then(pick_file) {
            Some(path) => call(
                &format!("I'll read `{path}`."),
                "read_file_content",
                json!({"file_path": path, "start_line": 1, "end_line": READ_LINES}),
            ),
            None => create_note("The workspace holds no file I can edit"),
        },
        "read_file_content" => {
            let path = last.file_path().unwrap_or_default().to_owned();
            let anchor = (!last.failed())
                .then(|| last.result.as_deref().and_then(unique_line))
                .flatten();
            match (anchor, comment_style(&path)) {
                (Some(line), Some(style)) if !path.is_empty() => call(
                    &format!("I'll add a one-line note to `{path}`."),
                    "edit_file_content",
                    json!({
                        "file_path": path,
                        "old_text": line,
                        "new_text": format!("{line}\n{}", style.comment(NOTE)),
                    }),
                ),
                _ => create_note(&format!("I found no line to anchor a note on in `{path}`")),
            }
        }
        "edit_file_content" if last.failed() && last.file_path() != Some(DEMO_NOTE_FILE) => {
            create_note("The edit did not apply")
        }
        "edit_file_content" => {
            let path = last.file_path().unwrap_or(DEMO_NOTE_FILE);
            let outcome = if last.failed() {
                format!("I tried to write `{path}`, but the edit failed (see the timeline).")
            } else {
                format!(
                    "I listed the workspace, read a file and edited `{path}`: the diff shows the change."
                )
            };
            finish(&outcome)
        }
        _ => finish("The session went somewhere the demo does not know."),
    }
}

fn call(content: &str, name: &str, arguments: Value) -> Step {
    Step::ToolCalls {
        calls: vec![ScriptedToolCall {
            name: name.to_owned(),
            arguments,
        }],
        content: Some(content.to_owned()),
        usage: None,
    }
}

fn create_note(why: &str) -> Step {
    call(
        &format!("{why}, so I'll write a note in a new file, `{DEMO_NOTE_FILE}`."),
        "edit_file_content",
        json!({
            "file_path": DEMO_NOTE_FILE,
            "old_text": "",
            "new_text": format!("# Demo note\n\n{NOTE}\n"),
        }),
    )
}

fn finish(outcome: &str) -> Step {
    Step::Message {
        content: format!(
            "{outcome}\n\nThis was the built-in demo model: it plays the same short session \
             for every task, whatever the description asks. Start the service with a model \
             endpoint (OPENAI_BASE_URL, OPENAI_API_KEY, AGENT_MODEL) for real work."
        ),
        usage: None,
    }
}

/// The last assistant tool call in `messages` and the tool message answering it.
fn last_call(messages: &[Value]) -> Option<LastCall> {
    let (index, assistant) = messages.iter().enumerate().rev().find(|(_, message)| {
        message.get("role").and_then(Value::as_str) == Some("assistant")
            && message
                .get("tool_calls")
                .and_then(Value::as_array)
                .is_some_and(|calls| !calls.is_empty())
    })?;
    let first = assistant.pointer("/tool_calls/0")?;
    let id = first.get("id").and_then(Value::as_str);
    let name = first.pointer("/function/name")?.as_str()?.to_owned();
    let arguments = first
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let result = messages[index + 1..]
        .iter()
        .find(|message| {
            message.get("role").and_then(Value::as_str) == Some("tool")
                && (id.is_none() || message.get("tool_call_id").and_then(Value::as_str) == id)
        })
        .and_then(|message| message.get("content"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(LastCall {
        name,
        arguments,
        result,
    })
}

/// The file to edit from a `list_directory` tree: the shallowest source file, else the
/// shallowest markup or style sheet, else the shallowest plain-text one.
fn pick_file(listing: &str) -> Option<String> {
    let mut dirs: Vec<String> = Vec::new();
    let mut best: Option<(u8, usize, String)> = None;
    for line in listing.lines().skip(1) {
        let name = line.trim_start_matches(' ');
        if name.is_empty() || name.starts_with('[') || name.starts_with('(') {
            continue;
        }
        let depth = (line.len() - name.len()) / 2;
        dirs.truncate(depth);
        if let Some(dir) = name.strip_suffix('/') {
            dirs.push(dir.to_owned());
            continue;
        }
        if name.ends_with(" -> (symlink)") || dirs.len() < depth {
            continue;
        }
        let path = dirs
            .iter()
            .map(String::as_str)
            .chain([name])
            .collect::<Vec<_>>()
            .join("/");
        let Some(style) = comment_style(&path) else {
            continue;
        };
        let rank = style.rank();
        if best
            .as_ref()
            .is_none_or(|(r, d, _)| (rank, depth) < (*r, *d))
        {
            best = Some((rank, depth, path));
        }
    }
    best.map(|(_, _, path)| path)
}

/// A line of the file (from `read_file_content`'s numbered view) that occurs exactly once
/// in what was read, so an exact-replace edit can anchor on it.
fn unique_line(view: &str) -> Option<String> {
    let lines: Vec<&str> = view
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once('\t').map(|(_, text)| text))
        .collect();
    let text = lines.join("\n");
    lines
        .iter()
        .find(|line| !line.trim().is_empty() && text.matches(**line).count() == 1)
        .map(|line| (*line).to_owned())
}

/// How a one-line comment is written in a file, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommentStyle {
    Hash,
    Slashes,
    Dashes,
    Semicolon,
    Percent,
    Html,
    CBlock,
    /// Text files: the note is a line of its own.
    Plain,
}

impl CommentStyle {
    /// Source files first: a note in code shows best what an agent does.
    fn rank(self) -> u8 {
        match self {
            Self::Html | Self::CBlock => 1,
            Self::Plain => 2,
            _ => 0,
        }
    }

    fn comment(self, text: &str) -> String {
        match self {
            Self::Hash => format!("# {text}"),
            Self::Slashes => format!("// {text}"),
            Self::Dashes => format!("-- {text}"),
            Self::Semicolon => format!("; {text}"),
            Self::Percent => format!("% {text}"),
            Self::Html => format!("<!-- {text} -->"),
            Self::CBlock => format!("/* {text} */"),
            Self::Plain => text.to_owned(),
        }
    }
}

/// `None` for files a line must not be added to (JSON, lock files, binaries).
fn comment_style(path: &str) -> Option<CommentStyle> {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name {
        "Makefile" | "Dockerfile" | "Containerfile" | "Gemfile" | "Rakefile" | ".gitignore" => {
            return Some(CommentStyle::Hash);
        }
        _ => {}
    }
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    let style = match extension.as_str() {
        "py" | "sh" | "bash" | "zsh" | "rb" | "pl" | "r" | "toml" | "yaml" | "yml" | "cfg"
        | "conf" | "mk" | "cmake" | "nix" | "ex" | "exs" | "jl" | "tf" => CommentStyle::Hash,
        "rs" | "js" | "mjs" | "cjs" | "ts" | "tsx" | "jsx" | "go" | "c" | "h" | "cc" | "cpp"
        | "hpp" | "java" | "kt" | "kts" | "swift" | "scala" | "cs" | "php" | "dart" | "zig"
        | "proto" | "groovy" | "gradle" => CommentStyle::Slashes,
        "sql" | "lua" | "hs" | "elm" => CommentStyle::Dashes,
        "lisp" | "clj" | "el" | "scm" | "ini" | "asm" => CommentStyle::Semicolon,
        "tex" | "erl" | "m" => CommentStyle::Percent,
        "md" | "markdown" | "html" | "htm" | "xml" | "vue" | "svelte" => CommentStyle::Html,
        "css" | "scss" | "less" => CommentStyle::CBlock,
        "txt" | "rst" | "adoc" | "org" | "csv" => CommentStyle::Plain,
        _ => return None,
    };
    Some(style)
}

#[cfg(test)]
#[path = "demo_tests.rs"]
mod tests;
