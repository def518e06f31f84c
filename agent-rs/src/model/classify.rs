//! Sorting a failed attempt into "try again" or "give up, and why".
//!
//! The split follows what another attempt could change: rate limits (429), server
//! errors (5xx, 408), connection failures, timeouts and streams that break off are
//! transient; bad credentials, requests the server rejects and answers that cannot be
//! parsed are not. A context-length rejection is singled out because the loop can fix
//! it by shortening the conversation. Servers word that rejection differently (OpenAI,
//! vLLM, llama.cpp, DeepSeek...), so it is recognised by code or by phrase.

use std::time::Duration;

use async_openai::error::{OpenAIError, WrappedError};
use tools::SecretRedactor;
use tools::output_cap::truncate_middle;

use super::ModelError;
use super::transport::{HttpStatusError, NotAStreamError};

/// Longest piece of server text kept in an error or retry reason.
const MAX_MESSAGE_BYTES: usize = 2_000;

/// Makes server-provided text safe to show: the API key is replaced (a server may echo
/// it back) and long bodies are cut.
#[derive(Clone, Debug, Default)]
pub(super) struct Sanitizer {
    redactor: SecretRedactor,
}

impl Sanitizer {
    pub(super) fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Self {
            redactor: SecretRedactor::new(secrets),
        }
    }

    pub(super) fn clean(&self, text: &str) -> String {
        truncate_middle(&self.redactor.redact(text.trim()), MAX_MESSAGE_BYTES)
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub(super) enum AttemptFailure {
    /// Another attempt may succeed.
    Transient {
        reason: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The connection itself could not be made.
        connect: bool,
    },
    /// Another attempt would fail the same way.
    Permanent(ModelError),
}

impl AttemptFailure {
    pub(super) fn transient(reason: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.into(),
            retry_after: None,
            connect: false,
        }
    }
}

/// Sorts an error from async-openai (including the [`HttpStatusError`] our transport
/// puts inside it).
pub(super) fn classify_openai_error(error: OpenAIError, sanitizer: &Sanitizer) -> AttemptFailure {
    match error {
        OpenAIError::Boxed(boxed) => {
            let boxed = match boxed.downcast::<HttpStatusError>() {
                Ok(status) => {
                    return classify_status(
                        status.status,
                        status.retry_after,
                        &status.body,
                        sanitizer,
                    );
                }
                Err(other) => other,
            };
            match boxed.downcast::<NotAStreamError>() {
                Ok(answer) => AttemptFailure::Permanent(ModelError::InvalidResponse {
                    message: format!(
                        "{answer} (does the server support streaming?): {}",
                        sanitizer.clean(&answer.body)
                    ),
                }),
                Err(other) => AttemptFailure::transient(sanitizer.clean(&error_chain(&*other))),
            }
        }
        OpenAIError::Reqwest(error) => classify_transport(&error, sanitizer),
        OpenAIError::ApiError(api) => {
            let body = serde_json::json!({ "error": api.api_error }).to_string();
            classify_status(api.status_code.as_u16(), None, &body, sanitizer)
        }
        OpenAIError::StreamError(error) => AttemptFailure::transient(format!(
            "the response stream broke off: {}",
            sanitizer.clean(&error.to_string())
        )),
        OpenAIError::JSONDeserialize(error, content) => {
            classify_undecodable_chunk(&error, &content, sanitizer)
        }
        OpenAIError::InvalidArgument(message) => {
            AttemptFailure::Permanent(ModelError::config(sanitizer.clean(&message)))
        }
        other => AttemptFailure::Permanent(ModelError::InvalidResponse {
            message: sanitizer.clean(&other.to_string()),
        }),
    }
}

fn classify_transport(error: &reqwest::Error, sanitizer: &Sanitizer) -> AttemptFailure {
    let detail = sanitizer.clean(&error_chain(error));
    if error.is_builder() {
        return AttemptFailure::Permanent(ModelError::config(format!(
            "cannot build the request: {detail}"
        )));
    }
    if error.is_connect() {
        return AttemptFailure::Transient {
            reason: format!("cannot connect: {detail}"),
            retry_after: None,
            connect: true,
        };
    }
    if error.is_timeout() {
        return AttemptFailure::transient(format!("timed out: {detail}"));
    }
    AttemptFailure::transient(format!("the request failed: {detail}"))
}

/// Sorts a non-2xx answer.
pub(super) fn classify_status(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    sanitizer: &Sanitizer,
) -> AttemptFailure {
    let details = ServerErrorDetails::parse(body);
    let message = sanitizer.clean(&details.message);
    match status {
        401 | 403 => AttemptFailure::Permanent(ModelError::Auth { status, message }),
        // OpenAI sends 429 both for "slow down" and for "out of credit"; only the
        // first passes with time.
        429 if details.is("insufficient_quota") => {
            AttemptFailure::Permanent(ModelError::BadRequest { status, message })
        }
        408 | 429 | 500..=599 => AttemptFailure::Transient {
            reason: format!("HTTP {status}: {message}"),
            retry_after,
            connect: false,
        },
        400 | 413 | 422 if details.says_context_too_long() => {
            AttemptFailure::Permanent(ModelError::ContextLengthExceeded { message })
        }
        _ => AttemptFailure::Permanent(ModelError::BadRequest { status, message }),
    }
}

/// A stream chunk that is not a chunk. Servers that fail after the stream has started
/// (vLLM, OpenAI) send an error object as a data line instead: that is sorted like an
/// HTTP error from the server. Anything else is a protocol mismatch.
fn classify_undecodable_chunk(
    error: &serde_json::Error,
    content: &str,
    sanitizer: &Sanitizer,
) -> AttemptFailure {
    if let Some(details) = ServerErrorDetails::parse_error_object(content) {
        let message = sanitizer.clean(&details.message);
        if details.says_context_too_long() {
            return AttemptFailure::Permanent(ModelError::ContextLengthExceeded { message });
        }
        return AttemptFailure::transient(format!(
            "the server reported an error mid-stream: {message}"
        ));
    }
    // A finish_reason outside OpenAI's five (DeepSeek's `insufficient_system_resource`,
    // vLLM's `abort`) means the server gave up on this answer, not that it speaks
    // another protocol.
    let value: Option<serde_json::Value> = serde_json::from_str(content).ok();
    if let Some(reason) = value
        .as_ref()
        .and_then(|chunk| chunk.pointer("/choices/0/finish_reason"))
        .and_then(|reason| reason.as_str())
        .filter(|reason| error.to_string().contains(&format!("`{reason}`")))
    {
        return AttemptFailure::transient(format!(
            "the server ended the answer early (finish_reason `{}`)",
            sanitizer.clean(reason)
        ));
    }
    AttemptFailure::Permanent(ModelError::InvalidResponse {
        message: format!(
            "a stream chunk is not a chat completion chunk ({error}): {}",
            sanitizer.clean(content)
        ),
    })
}

/// What an error body says, whichever of the common shapes it has.
#[derive(Debug, Default)]
struct ServerErrorDetails {
    message: String,
    kind: Option<String>,
    code: Option<String>,
}

impl ServerErrorDetails {
    fn parse(body: &str) -> Self {
        Self::parse_error_object(body).unwrap_or_else(|| Self {
            message: if body.trim().is_empty() {
                "(empty response body)".to_string()
            } else {
                body.to_string()
            },
            ..Self::default()
        })
    }

    /// `{"error": {"message", "type", "code"}}` (OpenAI and most others),
    /// `{"error": "text"}` (some proxies) or `{"object": "error", "message": ...}` (older
    /// vLLM).
    fn parse_error_object(body: &str) -> Option<Self> {
        if let Ok(wrapped) = serde_json::from_str::<WrappedError>(body) {
            return Some(Self {
                message: wrapped.error.message,
                kind: wrapped.error.r#type,
                code: wrapped.error.code,
            });
        }
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        let text_field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
        if let Some(message) = text_field("error") {
            return Some(Self {
                message,
                ..Self::default()
            });
        }
        if text_field("object").as_deref() == Some("error") {
            return Some(Self {
                message: text_field("message").unwrap_or_default(),
                kind: text_field("type"),
                code: value.get("code").map(|code| code.to_string()),
            });
        }
        None
    }

    fn is(&self, name: &str) -> bool {
        self.kind.as_deref() == Some(name) || self.code.as_deref() == Some(name)
    }

    fn says_context_too_long(&self) -> bool {
        const PHRASES: &[&str] = &[
            "context length",
            "context_length",
            "context size",
            "context window",
            "maximum context",
            "prompt is too long",
            "too many input tokens",
        ];
        let message = self.message.to_ascii_lowercase();
        self.is("context_length_exceeded")
            || self.is("exceed_context_size_error")
            || PHRASES.iter().any(|phrase| message.contains(phrase))
    }
}

/// An error with its causes: reqwest's own message hides the useful part ("connection
/// refused") in its source.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
