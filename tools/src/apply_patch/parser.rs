//! Turns the patch text into a list of file operations, before anything touches the disk.
//!
//! The format is codex's (`*** Begin Patch` ... `*** End Patch`). Models write it by hand,
//! so the parser forgives what carries no meaning: markers and `@@` headers padded with
//! whitespace, a shell heredoc (`<<'EOF'` ... `EOF`) or a Markdown fence around the
//! patch, blank lines between operations. It stays strict where a guess could change the
//! result: an unknown header or a hunk line without a ` `/`-`/`+` prefix is an error that
//! quotes the line and its number in the patch.

const BEGIN_PATCH: &str = "*** Begin Patch";
const END_PATCH: &str = "*** End Patch";
const ADD_FILE: &str = "*** Add File:";
const DELETE_FILE: &str = "*** Delete File:";
const UPDATE_FILE: &str = "*** Update File:";
const MOVE_TO: &str = "*** Move to:";
const END_OF_FILE: &str = "*** End of File";
const HUNK_HEADER: &str = "@@";

/// A parsed patch: its file operations, in the order they are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub ops: Vec<FileOp>,
}

/// One `*** Add/Delete/Update File:` section. `line` is its header's line in the patch
/// (1-based), used to point the model at it in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Add {
        path: String,
        contents: String,
        line: usize,
    },
    Delete {
        path: String,
        line: usize,
    },
    Update {
        path: String,
        move_to: Option<String>,
        chunks: Vec<Chunk>,
        line: usize,
    },
}

impl FileOp {
    pub fn path(&self) -> &str {
        match self {
            FileOp::Add { path, .. }
            | FileOp::Delete { path, .. }
            | FileOp::Update { path, .. } => path,
        }
    }

    pub fn line(&self) -> usize {
        match self {
            FileOp::Add { line, .. }
            | FileOp::Delete { line, .. }
            | FileOp::Update { line, .. } => *line,
        }
    }

    /// The header as the model wrote it (normalised), for error messages.
    pub fn header(&self) -> String {
        match self {
            FileOp::Add { path, .. } => format!("{ADD_FILE} {path}"),
            FileOp::Delete { path, .. } => format!("{DELETE_FILE} {path}"),
            FileOp::Update { path, .. } => format!("{UPDATE_FILE} {path}"),
        }
    }
}

/// One hunk of an update: the lines to find (`old_lines`, context and `-` lines) and what
/// replaces them (`new_lines`, context and `+` lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// `@@ text` headers, each a line to find, in order, before the hunk's lines.
    pub contexts: Vec<String>,
    pub old_lines: Vec<String>,
    pub new_lines: Vec<String>,
    /// For each of `new_lines`: the index in `old_lines` of the same context line, so the
    /// file's own text of a loosely matched context line is kept.
    pub context_of_new: Vec<Option<usize>>,
    /// `*** End of File` closed the hunk: its lines must be the file's last ones.
    pub end_of_file: bool,
    /// Line of the hunk's first line in the patch (1-based).
    pub line: usize,
    pub added: usize,
    pub removed: usize,
}

/// Why the patch text is not a patch. Messages quote the patch and say what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the patch is empty; send the text from `{BEGIN_PATCH}` to `{END_PATCH}`")]
    Empty,

    #[error("the first line of the patch must be `{BEGIN_PATCH}`, found `{found}`")]
    MissingBegin { found: String },

    #[error("the last line of the patch must be `{END_PATCH}`, found `{found}`")]
    MissingEnd { found: String },

    #[error(
        "the patch contains no file operation; add `{ADD_FILE} path`, `{DELETE_FILE} path` \
         or `{UPDATE_FILE} path` sections between `{BEGIN_PATCH}` and `{END_PATCH}`"
    )]
    NoOperations,

    #[error(
        "line {line}: `{found}` is not a valid file operation header; expected \
         `{ADD_FILE} path`, `{DELETE_FILE} path` or `{UPDATE_FILE} path`"
    )]
    InvalidHeader { line: usize, found: String },

    #[error("line {line}: `{marker}` needs a file path after it")]
    MissingPath { line: usize, marker: &'static str },

    #[error(
        "line {line}: `{UPDATE_FILE} {path}` has no hunk; follow it with `@@` and lines \
         starting with ` ` (context), `-` (removed) or `+` (added)"
    )]
    EmptyUpdate { line: usize, path: String },

    #[error(
        "line {line}: a hunk of `{path}` has no lines; after `@@` write lines starting with \
         ` ` (context), `-` (removed) or `+` (added)"
    )]
    EmptyHunk { line: usize, path: String },

    #[error(
        "line {line}: unexpected line `{found}` in the update of `{path}`; every hunk line \
         starts with ` ` (context), `-` (removed) or `+` (added), and hunks start with `@@`"
    )]
    BadHunkLine {
        line: usize,
        path: String,
        found: String,
    },
}

/// Parses a whole patch. Nothing is read from or written to disk.
pub fn parse_patch(text: &str) -> Result<Patch, ParseError> {
    let all: Vec<&str> = text.lines().collect();
    let (first, last) = unwrap_patch(&all)?;
    let mut parser = Parser {
        lines: &all,
        pos: first + 1,
        end: last,
    };
    let mut ops = Vec::new();
    while parser.pos < parser.end {
        if parser.current().trim().is_empty() {
            parser.pos += 1;
            continue;
        }
        ops.push(parser.file_op()?);
    }
    if ops.is_empty() {
        return Err(ParseError::NoOperations);
    }
    Ok(Patch { ops })
}

/// Finds the `*** Begin Patch` and `*** End Patch` lines (their indexes), looking through
/// blank lines and one heredoc or Markdown fence wrapper.
fn unwrap_patch(lines: &[&str]) -> Result<(usize, usize), ParseError> {
    let mut first = 0;
    let mut last = lines.len();
    while first < last && lines[first].trim().is_empty() {
        first += 1;
    }
    while last > first && lines[last - 1].trim().is_empty() {
        last -= 1;
    }
    if first == last {
        return Err(ParseError::Empty);
    }
    let mut last = last - 1;
    if last > first + 1 && is_wrapper_open(lines[first]) && is_wrapper_close(lines[last]) {
        first += 1;
        last -= 1;
    }
    let begin = lines[first].trim();
    if begin != BEGIN_PATCH {
        return Err(ParseError::MissingBegin {
            found: begin.to_string(),
        });
    }
    let end = lines[last].trim();
    if last == first || end != END_PATCH {
        return Err(ParseError::MissingEnd {
            found: end.to_string(),
        });
    }
    Ok((first, last))
}

fn is_wrapper_open(line: &str) -> bool {
    let line = line.trim();
    ["<<EOF", "<<'EOF'", "<<\"EOF\""]
        .iter()
        .any(|heredoc| line.ends_with(heredoc))
        || line.starts_with("```")
}

fn is_wrapper_close(line: &str) -> bool {
    let line = line.trim();
    line == "EOF" || line == "```"
}

/// Whether a line ends the current operation's section: another header or the end.
fn is_section_marker(line: &str) -> bool {
    let line = line.trim();
    [ADD_FILE, DELETE_FILE, UPDATE_FILE]
        .iter()
        .any(|marker| line.starts_with(marker))
        || line == END_PATCH
}

/// `@@` or `@@ text`: `Some(None)` or `Some(Some(text))`. Inside a hunk, ` @@ x` is a
/// context line (diff files contain such lines), so indentation is only forgiven where a
/// hunk must start (`indented_ok`).
fn hunk_header(line: &str, indented_ok: bool) -> Option<Option<String>> {
    if !indented_ok && line.starts_with(char::is_whitespace) {
        return None;
    }
    let trimmed = line.trim();
    let rest = trimmed.strip_prefix(HUNK_HEADER)?;
    if rest.is_empty() {
        return Some(None);
    }
    // `@@ text` needs the space; `@@@` or `@@foo` is hunk text, not a header.
    rest.strip_prefix(char::is_whitespace)
        .map(|text| Some(text.trim().to_string()).filter(|text| !text.is_empty()))
}

struct Parser<'a> {
    lines: &'a [&'a str],
    pos: usize,
    /// Index of the `*** End Patch` line.
    end: usize,
}

impl Parser<'_> {
    fn current(&self) -> &str {
        self.lines[self.pos]
    }

    /// 1-based line number of the current line.
    fn line_number(&self) -> usize {
        self.pos + 1
    }

    fn file_op(&mut self) -> Result<FileOp, ParseError> {
        let line = self.line_number();
        let header = self.current().trim();
        let path_after = |marker: &'static str| -> Option<Result<String, ParseError>> {
            let path = header.strip_prefix(marker)?.trim();
            Some(if path.is_empty() {
                Err(ParseError::MissingPath { line, marker })
            } else {
                Ok(path.to_string())
            })
        };
        if let Some(path) = path_after(ADD_FILE) {
            let path = path?;
            self.pos += 1;
            let contents = self.added_lines();
            Ok(FileOp::Add {
                path,
                contents,
                line,
            })
        } else if let Some(path) = path_after(DELETE_FILE) {
            self.pos += 1;
            Ok(FileOp::Delete { path: path?, line })
        } else if let Some(path) = path_after(UPDATE_FILE) {
            let path = path?;
            self.pos += 1;
            self.update(path, line)
        } else {
            Err(ParseError::InvalidHeader {
                line,
                found: header.to_string(),
            })
        }
    }

    /// The `+` lines of an Add File section. A blank line among them is an empty line of
    /// the file when more `+` lines follow it.
    fn added_lines(&mut self) -> String {
        let mut contents = String::new();
        let mut pending_blank = 0;
        while self.pos < self.end {
            let line = self.current();
            if let Some(text) = line.strip_prefix('+') {
                contents.push_str(&"\n".repeat(pending_blank));
                pending_blank = 0;
                contents.push_str(text);
                contents.push('\n');
            } else if line.trim().is_empty() {
                pending_blank += 1;
            } else {
                break;
            }
            self.pos += 1;
        }
        contents
    }

    fn update(&mut self, path: String, line: usize) -> Result<FileOp, ParseError> {
        let mut move_to = None;
        if self.pos < self.end {
            let next = self.current().trim();
            if let Some(dest) = next.strip_prefix(MOVE_TO) {
                let dest = dest.trim();
                if dest.is_empty() {
                    return Err(ParseError::MissingPath {
                        line: self.line_number(),
                        marker: MOVE_TO,
                    });
                }
                move_to = Some(dest.to_string());
                self.pos += 1;
            }
        }
        let mut chunks = Vec::new();
        while self.pos < self.end {
            let current = self.current();
            if current.trim().is_empty() {
                self.pos += 1;
                continue;
            }
            if is_section_marker(current) {
                break;
            }
            chunks.push(self.chunk(&path, chunks.is_empty())?);
        }
        if chunks.is_empty() {
            return Err(ParseError::EmptyUpdate { line, path });
        }
        Ok(FileOp::Update {
            path,
            move_to,
            chunks,
            line,
        })
    }

    /// One hunk: `@@` headers (optional for the first hunk), then its lines, up to the
    /// next header, `*** End of File`, or the next section.
    fn chunk(&mut self, path: &str, first: bool) -> Result<Chunk, ParseError> {
        let mut chunk = Chunk {
            line: self.line_number(),
            ..Chunk::default()
        };
        let mut has_header = false;
        while self.pos < self.end {
            // Only the first header of a hunk may be indented; after it, ` @@ x` is a line.
            let Some(context) = hunk_header(self.current(), !has_header) else {
                break;
            };
            has_header = true;
            chunk.contexts.extend(context);
            self.pos += 1;
        }
        if !has_header && !first {
            return Err(self.bad_line(path));
        }
        let mut body_lines = 0;
        while self.pos < self.end {
            let line = self.current();
            // Inside a hunk an indented marker is a context line, as in codex.
            let unindented = !line.starts_with(char::is_whitespace);
            if unindented && line.trim_end() == END_OF_FILE {
                if body_lines == 0 {
                    return Err(ParseError::EmptyHunk {
                        line: self.line_number(),
                        path: path.to_string(),
                    });
                }
                chunk.end_of_file = true;
                self.pos += 1;
                break;
            }
            if (unindented && is_section_marker(line)) || hunk_header(line, false).is_some() {
                break;
            }
            if line.is_empty() {
                // A blank line inside a hunk is an empty context line.
                chunk.push_context(String::new());
            } else if let Some(text) = line.strip_prefix(' ') {
                chunk.push_context(text.to_string());
            } else if let Some(text) = line.strip_prefix('-') {
                chunk.old_lines.push(text.to_string());
                chunk.removed += 1;
            } else if let Some(text) = line.strip_prefix('+') {
                chunk.new_lines.push(text.to_string());
                chunk.context_of_new.push(None);
                chunk.added += 1;
            } else {
                return Err(self.bad_line(path));
            }
            body_lines += 1;
            self.pos += 1;
        }
        if body_lines == 0 {
            return Err(ParseError::EmptyHunk {
                line: chunk.line,
                path: path.to_string(),
            });
        }
        if !chunk.end_of_file {
            drop_trailing_blank_context(&mut chunk);
        }
        Ok(chunk)
    }

    fn bad_line(&self, path: &str) -> ParseError {
        ParseError::BadHunkLine {
            line: self.line_number(),
            path: path.to_string(),
            found: self.current().to_string(),
        }
    }
}

/// Blank lines closing a hunk are usually spacing the model put before the next header,
/// not lines the file must contain there. Being context on both sides, dropping them
/// leaves the result unchanged and lets the hunk match.
fn drop_trailing_blank_context(chunk: &mut Chunk) {
    while chunk.old_lines.len() > 1
        && chunk.new_lines.len() > 1
        && chunk.old_lines.last().is_some_and(String::is_empty)
        && chunk.context_of_new.last() == Some(&Some(chunk.old_lines.len() - 1))
    {
        chunk.old_lines.pop();
        chunk.new_lines.pop();
        chunk.context_of_new.pop();
    }
}

impl Chunk {
    fn push_context(&mut self, line: String) {
        self.context_of_new.push(Some(self.old_lines.len()));
        self.old_lines.push(line.clone());
        self.new_lines.push(line);
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
