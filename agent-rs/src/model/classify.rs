//! Sorting a failed attempt into "try again" or "give up, and why".
//!
//! The split follows what another attempt could change: rate limits (429), server
//! errors (5xx, 408), connection failures, timeouts and streams that break off are
//! transient; bad credentials, requests the server rejects and answers that cannot be
//! parsed are not. A context-length rejection is singled out because the loop can fix
//! it by shortening the conversation. Servers word that rejection differently (OpenAI,
//! vLLM, llama.cpp, DeepSeek...), so it is recognised by code or by phrase.

use std::time::Duration;

use tools::SecretRedactor;
use tools::output_cap::truncate_middle;

use super::ModelError;
use super::stream::StreamFault;
use super::transport::SendFailure;

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

/// Sorts a request that produced no event stream.
pub(super) fn classify_send_failure(failure: SendFailure, sanitizer: &Sanitizer) -> AttemptFailure {
    match failure {
        SendFailure::Status(status) => {
            classify_status(status.status, status.retry_after, &status.body, sanitizer)
        }
        SendFailure::NotAStream { content_type, body } => {
            AttemptFailure::Permanent(ModelError::InvalidResponse {
                message: format!(
                    "expected an event stream, got `{content_type}` (does the server support \
                     streaming?): {}",
                    sanitizer.clean(&body)
                ),
            })
        }
        SendFailure::Http(error) => classify_transport(&error, sanitizer),
    }
}

/// A stream that broke while being read.
pub(super) fn classify_stream_error(
    error: &sse_stream::Error,
    sanitizer: &Sanitizer,
) -> AttemptFailure {
    AttemptFailure::transient(format!(
        "the response stream broke off: {}",
        sanitizer.clean(&error_chain(error))
    ))
}

/// A stream the server itself declared failed: an error object in the stream (OpenAI,
/// vLLM, Groq's `event: error`, OpenRouter's `error` inside a normal chunk) or a finish
/// reason meaning it gave up. Another attempt may well succeed (a sampled answer that
/// failed validation, an overloaded upstream), except when the conversation is too long
/// or the credentials are refused.
pub(super) fn classify_stream_fault(fault: StreamFault, sanitizer: &Sanitizer) -> AttemptFailure {
    match fault {
        StreamFault::Abandoned(reason) => AttemptFailure::transient(format!(
            "the server ended the answer early (finish_reason `{}`)",
            sanitizer.clean(&reason)
        )),
        StreamFault::ServerError(error) => {
            let body = if error.get("error").is_some() {
                error
            } else {
                serde_json::json!({ "error": error })
            };
            let details = ServerErrorDetails::parse(&body.to_string());
            let message = sanitizer.clean(&details.message);
            if details.says_context_too_long() {
                return AttemptFailure::Permanent(ModelError::ContextLengthExceeded { message });
            }
            if let Some(status @ (401 | 403)) = details.status {
                return AttemptFailure::Permanent(ModelError::Auth { status, message });
            }
            AttemptFailure::transient(format!(
                "the server reported an error mid-stream: {message}"
            ))
        }
    }
}

/// A data line that is not a chunk at all: the server speaks another protocol.
pub(super) fn undecodable_chunk(
    error: &serde_json::Error,
    content: &str,
    sanitizer: &Sanitizer,
) -> AttemptFailure {
    AttemptFailure::Permanent(ModelError::InvalidResponse {
        message: format!(
            "a stream chunk is not a chat completion chunk ({error}): {}",
            sanitizer.clean(content)
        ),
    })
}

/// Whether a 400 blames the tool schemas (the wording of Gemini and other strict
/// validators), so that resending them in the portable dialect may succeed.
pub(super) fn blames_tool_schemas(status: u16, body: &str) -> bool {
    if !matches!(status, 400 | 422) {
        return false;
    }
    let text = body.to_ascii_lowercase();
    [
        "schema",
        "function_declarations",
        "unknown name",
        "parameters.properties",
        "additionalproperties",
        "$ref",
    ]
    .iter()
    .any(|phrase| text.contains(phrase))
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

/// What an error body says, whichever of the common shapes it has.
#[derive(Debug, Default)]
struct ServerErrorDetails {
    message: String,
    kind: Option<String>,
    code: Option<String>,
    /// An HTTP status the body carries itself (`"code": 400` from OpenRouter, Groq's
    /// `status_code`): the only status a mid-stream error has.
    status: Option<u16>,
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
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        let text = |value: &serde_json::Value, name: &str| {
            value.get(name).and_then(|v| v.as_str()).map(str::to_string)
        };
        let code_of = |value: &serde_json::Value| match value.get("code") {
            Some(serde_json::Value::String(code)) => Some(code.clone()),
            Some(serde_json::Value::Number(code)) => Some(code.to_string()),
            _ => None,
        };
        let status_of = |value: &serde_json::Value| {
            ["status_code", "status", "code"]
                .iter()
                .filter_map(|name| value.get(*name).and_then(serde_json::Value::as_u64))
                .find(|status| (400..600).contains(status))
                .and_then(|status| u16::try_from(status).ok())
        };
        match value.get("error") {
            Some(serde_json::Value::String(message)) => {
                return Some(Self {
                    message: message.clone(),
                    ..Self::default()
                });
            }
            Some(error @ serde_json::Value::Object(_)) => {
                return Some(Self {
                    message: text(error, "message").unwrap_or_else(|| error.to_string()),
                    kind: text(error, "type"),
                    code: code_of(error),
                    status: status_of(error),
                });
            }
            _ => {}
        }
        if text(&value, "object").as_deref() == Some("error") {
            return Some(Self {
                message: text(&value, "message").unwrap_or_default(),
                kind: text(&value, "type"),
                code: code_of(&value),
                status: status_of(&value),
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
