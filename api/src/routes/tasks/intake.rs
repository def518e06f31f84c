//! Turning a create request into a stored, queued task.
//!
//! Shared by `POST /api/v1/tasks` and the original `POST /api/task`: both parse into a
//! [`TaskDraft`], then [`submit`] checks it and hands it to the orchestrator's
//! [`orchestrator::TaskOps::submit`], which stores and queues it. No row is written
//! before every check passed, so a rejected request leaves nothing behind.
//!
//! The zip goes to the blob store before the row, streamed as it arrives
//! ([`super::staging`]): the row must name its blob, and the store picks the task's id,
//! so the upload lives under its own id (`uploads/{upload}/input.zip`). A refused or
//! failed create, or an idempotent repeat that found the earlier task, deletes that
//! upload again ([`create_from_form`], [`submit`]).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use orchestrator::store::Created;
use orchestrator::task::BestOf;
use orchestrator::{InputSource, NewTask, Task, TaskLimits};

use super::staging::{StagedZip, multipart_error, stage_zip};
use crate::dto::CreateTaskRequest;
use crate::error::ApiError;
use crate::state::SharedState;
use crate::validate::{DraftInput, PullRequestDraft, TaskDraft, check_draft};

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Whether the request made a new task or found the one its idempotency key names.
pub enum Submitted {
    New(Task),
    Existing(Task),
}

/// Reads a body of at most `limit` bytes; more is a 413.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::BadRequest(format!("reading the body: {err}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("the body is over the {limit}-byte limit"))
}

/// The request's media type, lower case, without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The `Idempotency-Key` header, checked.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| {
            (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len())
                && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ))
        })?;
    Ok(Some(key.to_string()))
}

/// A JSON create body.
pub fn parse_json(bytes: &[u8]) -> Result<TaskDraft, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let request: CreateTaskRequest =
        serde_path_to_error::deserialize(&mut json).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if !inner.is_data() {
                ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
            } else if path == "." {
                ApiError::Invalid(format!("invalid task request: {inner}"))
            } else {
                ApiError::InvalidField {
                    message: format!("invalid task request: {path}: {inner}"),
                    field: path,
                }
            }
        })?;
    json.end()
        .map_err(|err| ApiError::BadRequest(format!("the body is not valid JSON: {err}")))?;
    Ok(TaskDraft {
        input: DraftInput::Git {
            url: request.git_url,
            git_ref: request.git_ref,
        },
        description: request.description,
        target_file: request.target_file,
        model: request.model,
        limits: TaskLimits {
            max_turns: request.max_turns,
            max_tokens: request.max_tokens,
            timeout_secs: request.timeout_secs,
        },
        pull_request: request.pull_request.map(|pr| PullRequestDraft {
            base: pr.base,
            title: pr.title,
            token: pr.github_token.map(secrecy::SecretString::from),
        }),
        attempts: request.attempts,
        check: request.check,
        setup: request.setup,
    })
}

/// The text parts and the zip of a multipart (or urlencoded) form.
#[derive(Debug, Default)]
pub struct FormFields {
    pub text: HashMap<String, String>,
    /// Already in the blob store; whoever drops the form without a task discards it.
    pub zip: Option<StagedZip>,
}

impl FormFields {
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.text.remove(name)
    }

    pub fn take_number<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        self.take(name)
            .map(|text| {
                text.trim().parse().map_err(|_| ApiError::InvalidField {
                    field: name.to_string(),
                    message: format!("{name} must be a whole number"),
                })
            })
            .transpose()
    }
}

/// Reads a multipart form, streaming its zip into the blob store; parts not in `known`
/// are refused when `strict`, skipped otherwise (the original API's clients may send
/// more). When the form is refused after its zip was stored, the zip is deleted again.
pub async fn read_multipart(
    state: &SharedState,
    request: Request,
    known: &[&str],
    strict: bool,
) -> Result<FormFields, ApiError> {
    let mut fields = FormFields::default();
    match read_parts(state, request, known, strict, &mut fields).await {
        Ok(()) => Ok(fields),
        Err(err) => {
            if let Some(zip) = &fields.zip {
                zip.discard(&*state.services.blobs).await;
            }
            Err(err)
        }
    }
}

async fn read_parts(
    state: &SharedState,
    request: Request,
    known: &[&str],
    strict: bool,
    fields: &mut FormFields,
) -> Result<(), ApiError> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|err| ApiError::BadRequest(err.body_text()))?;
    loop {
        let field = multipart.next_field().await.map_err(multipart_error)?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or_default().to_string();
        if !known.contains(&name.as_str()) {
            if strict {
                return Err(ApiError::Invalid(format!(
                    "unknown field `{name}`; expected one of {}",
                    known.join(", ")
                )));
            }
            continue;
        }
        if name == "zip_file" {
            if fields.zip.is_some() {
                return Err(ApiError::Invalid("field `zip_file` is given twice".into()));
            }
            let file_name = field
                .file_name()
                .map(base_name)
                .filter(|name| !name.is_empty())
                .unwrap_or("input.zip")
                .to_string();
            fields.zip = Some(stage_zip(state, file_name, field).await?);
        } else {
            let text = field.text().await.map_err(multipart_error)?;
            if fields.text.insert(name.clone(), text).is_some() {
                return Err(ApiError::Invalid(format!("field `{name}` is given twice")));
            }
        }
    }
    Ok(())
}

/// Drafts, checks, stores and queues the task a form describes; a form refused before
/// [`submit`] has its staged zip deleted here ([`submit`] deletes it after).
pub async fn create_from_form(
    state: &SharedState,
    owner: String,
    mut fields: FormFields,
    description_field: &str,
    idempotency_key: Option<String>,
) -> Result<Submitted, ApiError> {
    let staged = fields.zip.as_ref().map(|zip| zip.prefix.clone());
    // The form's own fields first, then the archive's directory (see `staging`).
    let mut zip_check = fields.zip.as_mut().map(|zip| zip.take_check());
    let checked = match draft_from_form(&mut fields, description_field) {
        Ok(draft) => match zip_check.as_mut() {
            Some(zip) => zip.verify(state).await.map(|()| draft),
            None => Ok(draft),
        },
        Err(err) => Err(err),
    };
    match checked {
        Ok(draft) => submit(state, owner, draft, idempotency_key).await,
        Err(err) => {
            discard_upload(state, staged.as_deref()).await;
            Err(err)
        }
    }
}

/// The last path segment of an uploaded file's name (browsers may send a full path).
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name).trim()
}

/// A draft from form fields, where exactly one of `git_url` and `zip_file` is given.
pub fn draft_from_form(
    fields: &mut FormFields,
    description_field: &str,
) -> Result<TaskDraft, ApiError> {
    let git_url = fields.take("git_url").filter(|url| !url.trim().is_empty());
    let input = match (git_url, fields.zip.take()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Invalid(
                "give either git_url or zip_file, not both".into(),
            ));
        }
        (None, None) => {
            return Err(ApiError::Invalid(
                "give the code as a git_url field or a zip_file part".into(),
            ));
        }
        (Some(url), None) => DraftInput::Git {
            url,
            git_ref: fields.take("git_ref").filter(|r| !r.trim().is_empty()),
        },
        (None, Some(zip)) => DraftInput::Zip {
            name: zip.name,
            key: zip.key,
        },
    };
    let description = fields
        .take(description_field)
        .ok_or_else(|| ApiError::InvalidField {
            field: description_field.to_string(),
            message: format!("missing field `{description_field}`; say what the agent should do"),
        })?;
    let optional = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    Ok(TaskDraft {
        input,
        description,
        target_file: optional(fields.take("target_file")),
        model: optional(fields.take("model")),
        limits: TaskLimits {
            max_turns: fields.take_number("max_turns")?,
            max_tokens: fields.take_number("max_tokens")?,
            timeout_secs: fields.take_number("timeout_secs")?,
        },
        setup: optional(fields.take("setup")),
        pull_request: pull_request_from_form(fields)?,
        attempts: fields.take_number("attempts")?,
        check: optional(fields.take("check")),
    })
}

/// The form's pull request fields: `github_token` (the original API's, which asks for a
/// pull request by itself), `pull_request` (`true`), `pull_request_base` and
/// `pull_request_title`. Blank fields count as absent.
fn pull_request_from_form(fields: &mut FormFields) -> Result<Option<PullRequestDraft>, ApiError> {
    let mut take = |name: &str| fields.take(name).filter(|v| !v.trim().is_empty());
    let asked = match take("pull_request") {
        Some(value) if value.trim().eq_ignore_ascii_case("true") => true,
        Some(_) => {
            return Err(ApiError::InvalidField {
                field: "pull_request".into(),
                message: "pull_request must be `true`, or left out".into(),
            });
        }
        None => false,
    };
    let draft = PullRequestDraft {
        token: take("github_token").map(secrecy::SecretString::from),
        base: take("pull_request_base"),
        title: take("pull_request_title"),
    };
    let any = asked || draft.token.is_some() || draft.base.is_some() || draft.title.is_some();
    Ok(any.then_some(draft))
}

/// Checks, stores and queues a task. A staged zip is deleted again when the task is
/// refused, not created, or found to exist already.
pub async fn submit(
    state: &SharedState,
    owner: String,
    draft: TaskDraft,
    idempotency_key: Option<String>,
) -> Result<Submitted, ApiError> {
    let upload_prefix = match &draft.input {
        DraftInput::Zip { key, .. } => key.rsplit_once('/').map(|(prefix, _)| prefix.to_string()),
        DraftInput::Git { .. } => None,
    };
    if let Err(err) = check_draft(&state.draft_rules, &draft).await {
        discard_upload(state, upload_prefix.as_deref()).await;
        return Err(err.into());
    }
    if let Err(err) = check_live_tasks(state, &owner).await {
        discard_upload(state, upload_prefix.as_deref()).await;
        return Err(err);
    }
    let services = &state.services;
    let input = match draft.input {
        DraftInput::Git { url, git_ref } => InputSource::Git {
            git_url: url,
            git_ref,
        },
        DraftInput::Zip { name, key } => InputSource::Zip {
            zip_name: name,
            zip_key: key,
        },
    };
    let pull_request = match draft.pull_request {
        Some(pr) => match super::pull_request::ask(state, &owner, &input, pr) {
            Ok(ask) => Some(ask),
            Err(err) => {
                discard_upload(state, upload_prefix.as_deref()).await;
                return Err(err);
            }
        },
        None => None,
    };
    let new = NewTask {
        owner,
        input,
        description: draft.description,
        target_file: draft.target_file,
        model: draft.model,
        limits: draft.limits,
        idempotency_key,
        pull_request,
        best_of: BestOf {
            attempts: draft.attempts.unwrap_or(1),
            check: draft.check,
        },
        setup: draft.setup,
    };
    // Stored and queued in one step by the orchestrator: once this returns the task
    // exists and will run, whatever happens to the queue.
    let (task, created) = match services.ops().submit(new).await {
        Ok(found) => found,
        Err(err) => {
            discard_upload(state, upload_prefix.as_deref()).await;
            return Err(err.into());
        }
    };
    if created == Created::Existing {
        discard_upload(state, upload_prefix.as_deref()).await;
        return Ok(Submitted::Existing(task));
    }
    state.metrics.task_created();
    Ok(Submitted::New(task))
}

/// Seconds an owner at the cap is told to wait: about how long a short task takes.
const LIVE_CAP_RETRY_AFTER_SECS: u64 = 30;

/// Refuses a create from an owner who has `max_live_tasks_per_owner` unfinished tasks.
/// (Checked before the create, not in its transaction: concurrent creates may pass it
/// together, overshooting by at most their number.)
pub(crate) async fn check_live_tasks(state: &SharedState, owner: &str) -> Result<(), ApiError> {
    let cap = state.config.max_live_tasks_per_owner;
    if cap == 0 {
        return Ok(());
    }
    let live = state.services.store.live_tasks(owner).await?;
    if live >= cap {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "you have {live} unfinished tasks, the most allowed at once; retry once one \
                 has finished, or cancel one"
            ),
            retry_after_secs: LIVE_CAP_RETRY_AFTER_SECS,
        });
    }
    Ok(())
}

async fn discard_upload(state: &SharedState, prefix: Option<&str>) {
    if let Some(prefix) = prefix
        && let Err(err) = state.services.blobs.delete_prefix(prefix).await
    {
        tracing::warn!(prefix, error = %err, "could not delete an unused upload");
    }
}
