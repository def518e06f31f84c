//! Checks on a task request before anything is stored.
//!
//! Everything a client can get wrong is caught here, with a message saying what to fix,
//! so a rejected request leaves no row and no blob behind. The git URL and the zip are
//! checked by the orchestrator's own rules, the ones the worker applies again: the URL
//! policy ([`GitUrlPolicy`]), and the zip's central directory (escaping names, links,
//! duplicates, entry count, declared size; [`orchestrator::workspace::check_zip`]), so a
//! hostile archive gets a 422 with the message the extraction would give. What only the
//! bytes can tell (the real decompressed size) is still the worker's to find.

use std::io::{Read, Seek, SeekFrom};

use orchestrator::TaskLimits;
use orchestrator::workspace::ExtractOptions;

pub use orchestrator::workspace::GitUrlPolicy;

// Lengths count characters, as JSON Schema's `maxLength` does (`crate::dto` states them).
const MAX_DESCRIPTION: usize = 32 * 1024;
const MAX_SHORT_FIELD: usize = 1024;
const MAX_TURNS: u32 = 10_000;
const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// Where a request's code comes from, before it is stored.
#[derive(Debug)]
pub enum DraftInput {
    Git {
        url: String,
        git_ref: Option<String>,
    },
    /// An upload already streamed into the blob store and checked there
    /// (`routes::tasks::staging`); discarded again if the request is refused.
    Zip { name: String, key: String },
}

/// A task request, parsed from JSON, multipart or the legacy form.
#[derive(Debug)]
pub struct TaskDraft {
    pub input: DraftInput,
    pub description: String,
    pub target_file: Option<String>,
    pub model: Option<String>,
    pub limits: TaskLimits,
    pub pull_request: Option<PullRequestDraft>,
    /// Best-of-N: how many independent attempts (absent: one).
    pub attempts: Option<u32>,
    /// A command run in each attempt's final workspace; exit code 0 passes.
    pub check: Option<String>,
    pub setup: Option<String>,
}

/// A pull request asked for with a task, before its token is sealed.
#[derive(Debug, Default)]
pub struct PullRequestDraft {
    pub base: Option<String>,
    pub title: Option<String>,
    pub token: Option<secrecy::SecretString>,
}

const MAX_BRANCH: usize = 255;
const MAX_TITLE: usize = 256;
const MAX_TOKEN: usize = 1024;

/// The pull request's own fields (whether the task may have one is the orchestrator's
/// to say, `orchestrator::pr::PullRequests::ask`).
pub fn check_pull_request(pr: &PullRequestDraft) -> Result<(), FieldError> {
    if let Some(base) = &pr.base {
        let bad = base.chars().count() > MAX_BRANCH
            || base.is_empty()
            || base.starts_with('-')
            || base.contains("..")
            || base.chars().any(|c| {
                c.is_control()
                    || c.is_whitespace()
                    || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
            });
        if bad {
            return Err(on("pull_request.base")(format!(
                "pull_request.base must be a branch name of at most {MAX_BRANCH} characters"
            )));
        }
    }
    if let Some(title) = &pr.title
        && (title.trim().is_empty()
            || title.chars().count() > MAX_TITLE
            || title.chars().any(char::is_control))
    {
        return Err(on("pull_request.title")(format!(
            "pull_request.title must be 1 to {MAX_TITLE} characters, not blank, without control characters"
        )));
    }
    if let Some(token) = &pr.token {
        use secrecy::ExposeSecret;
        let token = token.expose_secret();
        if token.is_empty()
            || token.len() > MAX_TOKEN
            || !token.bytes().all(|b| (b'!'..=b'~').contains(&b))
        {
            // The token itself is never echoed back.
            return Err(on("github_token")(format!(
                "github_token must be 1 to {MAX_TOKEN} visible ASCII characters"
            )));
        }
    }
    Ok(())
}

/// The rules a draft is checked against: the worker's own.
#[derive(Debug, Clone, Default)]
pub struct DraftRules {
    pub git: GitUrlPolicy,
    pub zip: ExtractOptions,
    /// The most attempts a task may ask for (`[orchestrator] max_attempts_per_task`).
    pub max_attempts: u32,
}

/// The longest check command.
pub const MAX_CHECK: usize = 4096;

/// `attempts` within the server's bound, and a check that is a command line.
pub fn check_best_of(
    attempts: Option<u32>,
    check: Option<&str>,
    max_attempts: u32,
) -> Result<(), FieldError> {
    if let Some(attempts) = attempts
        && !(1..=max_attempts.max(1)).contains(&attempts)
    {
        return Err(on("attempts")(format!(
            "attempts must be between 1 and {} (this server's max_attempts_per_task)",
            max_attempts.max(1)
        )));
    }
    if let Some(check) = check {
        let control = check
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t');
        if check.trim().is_empty() || check.chars().count() > MAX_CHECK || control {
            return Err(on("check")(format!(
                "check must be a command line of 1 to {MAX_CHECK} characters, not blank, \
                 without control characters other than tab and newline"
            )));
        }
    }
    Ok(())
}

/// A refused field: which one (as the request names it), and what to fix. Clients show
/// the message next to that field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Attaches `field` to a check's message.
fn on(field: &'static str) -> impl Fn(String) -> FieldError {
    move |message| FieldError { field, message }
}

/// Checks every field; the error names the field and gives the client-facing reason.
pub async fn check_draft(rules: &DraftRules, draft: &TaskDraft) -> Result<(), FieldError> {
    if draft.description.trim().is_empty() {
        return Err(on("description")(
            "description is blank; say what the agent should do".into(),
        ));
    }
    if draft.description.chars().count() > MAX_DESCRIPTION {
        return Err(on("description")(format!(
            "description is longer than {MAX_DESCRIPTION} characters; shorten it"
        )));
    }
    if let Some(target) = &draft.target_file {
        check_target_file(target).map_err(on("target_file"))?;
    }
    if let Some(model) = &draft.model {
        check_short("model", model).map_err(on("model"))?;
    }
    check_limits(&draft.limits)?;
    check_best_of(draft.attempts, draft.check.as_deref(), rules.max_attempts)?;
    if let Some(setup) = &draft.setup {
        check_setup(setup).map_err(on("setup"))?;
    }
    if let Some(pr) = &draft.pull_request {
        check_pull_request(pr)?;
    }
    match &draft.input {
        DraftInput::Git { url, git_ref } => {
            if let Some(git_ref) = git_ref {
                check_git_ref(git_ref).map_err(on("git_ref"))?;
            }
            rules
                .git
                .check(url)
                .await
                .map(drop)
                .map_err(|err| on("git_url")(git_url_refusal(err)))
        }
        DraftInput::Zip { name, .. } => check_short("zip file name", name).map_err(on("zip_file")),
    }
}

/// Longest setup script, in characters.
const MAX_SETUP: usize = 64 * 1024;

/// A setup script: not blank, not too long, and no NUL (it travels in an environment
/// variable, which cannot hold one).
fn check_setup(setup: &str) -> Result<(), String> {
    if setup.trim().is_empty() {
        return Err("setup is blank; give the script to run, or leave the field out".into());
    }
    if setup.chars().count() > MAX_SETUP {
        return Err(format!(
            "setup is longer than {MAX_SETUP} characters; put the steps in a script in the \
             repository and call it"
        ));
    }
    if setup.contains('\0') {
        return Err("setup contains a NUL character; remove it".into());
    }
    Ok(())
}

/// The policy's reason, said about the field (the URL itself is not echoed back).
fn git_url_refusal(err: orchestrator::WorkspaceError) -> String {
    match err {
        orchestrator::WorkspaceError::UrlRefused { reason, .. } => {
            format!("git_url is not accepted: {reason}")
        }
        other => format!("git_url is not accepted: {other}"),
    }
}

fn check_short(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} is blank; leave it out instead"));
    }
    if value.chars().count() > MAX_SHORT_FIELD || value.chars().any(char::is_control) {
        return Err(format!(
            "{field} must be at most {MAX_SHORT_FIELD} characters, without control characters"
        ));
    }
    Ok(())
}

/// A path inside the workspace, relative, without `..`.
fn check_target_file(target: &str) -> Result<(), String> {
    check_short("target_file", target)?;
    let escapes = target.starts_with('/')
        || target.starts_with('\\')
        || target.split(['/', '\\']).any(|seg| seg == "..");
    if escapes {
        return Err(format!(
            "target_file `{target}` must be a path relative to the repository root, without `..`"
        ));
    }
    Ok(())
}

/// A branch, tag or commit; never something git could read as an option.
fn check_git_ref(git_ref: &str) -> Result<(), String> {
    check_short("git_ref", git_ref)?;
    let bad = git_ref.starts_with('-')
        || git_ref.contains("..")
        || git_ref
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'));
    if bad {
        return Err(format!(
            "git_ref `{git_ref}` is not a valid branch, tag or commit name"
        ));
    }
    Ok(())
}

fn check_limits(limits: &TaskLimits) -> Result<(), FieldError> {
    if let Some(turns) = limits.max_turns
        && !(1..=MAX_TURNS).contains(&turns)
    {
        return Err(on("max_turns")(format!(
            "max_turns must be between 1 and {MAX_TURNS}"
        )));
    }
    if limits.max_tokens == Some(0) {
        return Err(on("max_tokens")("max_tokens must be at least 1".into()));
    }
    if let Some(secs) = limits.timeout_secs
        && !(1..=MAX_TIMEOUT_SECS).contains(&secs)
    {
        return Err(on("timeout_secs")(format!(
            "timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}"
        )));
    }
    Ok(())
}

const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
const END_OF_CENTRAL_DIR: &[u8] = b"PK\x05\x06";
/// The end record is 22 bytes plus a comment of at most 64 KiB.
const EOCD_SEARCH: usize = 22 + 0xffff;

/// Whether `bytes` is a zip the worker would extract (see [`check_zip_reader`]).
pub fn check_zip(bytes: &[u8], rules: &ExtractOptions) -> Result<(), String> {
    check_zip_reader(std::io::Cursor::new(bytes), bytes.len() as u64, rules)
}

/// Whether the `len` bytes `reader` holds are a zip the worker would extract: it starts
/// like one, has the end record, and its central directory passes the extraction's
/// first pass. Only the start, the end and the directory are read.
pub fn check_zip_reader<R: Read + Seek>(
    mut reader: R,
    len: u64,
    rules: &ExtractOptions,
) -> Result<(), String> {
    let not_zip = || "zip_file is not a zip archive; upload a .zip of the repository".to_string();
    let unreadable = |err: std::io::Error| format!("zip_file could not be read: {err}");
    if len < 22 {
        return Err(not_zip());
    }
    let mut head = [0u8; 4];
    reader.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    reader.read_exact(&mut head).map_err(unreadable)?;
    if !(&head[..] == LOCAL_HEADER || &head[..] == END_OF_CENTRAL_DIR) {
        return Err(not_zip());
    }
    let tail_len = len.min(EOCD_SEARCH as u64);
    let mut tail = vec![0u8; usize::try_from(tail_len).unwrap_or(EOCD_SEARCH)];
    reader
        .seek(SeekFrom::Start(len - tail_len))
        .map_err(unreadable)?;
    reader.read_exact(&mut tail).map_err(unreadable)?;
    if !tail.windows(4).rev().any(|w| w == END_OF_CENTRAL_DIR) {
        return Err(format!("{}: it is truncated (no end record)", not_zip()));
    }
    reader.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    orchestrator::workspace::check_zip(reader, len, rules)
        .map(drop)
        .map_err(|err| format!("zip_file is refused: {err}"))
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
