//! Why a model turn failed, in the terms the agent loop acts on: give up (unreachable,
//! bad credentials, retries spent), shrink the conversation (context too long), or
//! report a bug (bad request, unreadable response, bad settings).
//!
//! Every message here that came from the server has been through the client's
//! sanitizer first: the API key is replaced and long bodies are cut.

/// A model turn that did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Every attempt failed to connect.
    #[error(
        "cannot reach the model server at {base_url} ({attempts} attempt(s)): {message}; \
         check that the server is running and that the base URL is right"
    )]
    Unreachable {
        base_url: String,
        attempts: u32,
        message: String,
    },
    /// 401 or 403: retrying with the same key cannot help.
    #[error(
        "the model server refused the credentials (HTTP {status}): {message}; check the API key"
    )]
    Auth { status: u16, message: String },
    /// Transient failures (429, 5xx, broken streams, timeouts) outlasted the retry budget.
    #[error("the model request failed after {attempts} attempt(s); last error: {last_error}")]
    RetriesExhausted { attempts: u32, last_error: String },
    /// The prompt does not fit the model's context window; the loop can shorten the
    /// conversation and try again.
    #[error("the conversation does not fit the model's context window: {message}")]
    ContextLengthExceeded { message: String },
    /// Any other refusal of the request itself (unknown model, invalid field...).
    #[error("the model server rejected the request (HTTP {status}): {message}")]
    BadRequest { status: u16, message: String },
    /// The server answered with something that is not a Chat Completions stream.
    #[error("the model server sent a response that cannot be read: {message}")]
    InvalidResponse { message: String },
    /// The settings cannot work (bad base URL, empty model name...).
    #[error("invalid model settings: {message}")]
    Config { message: String },
}

impl ModelError {
    /// A short, stable code for `result.json` and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "model_unreachable",
            Self::Auth { .. } => "model_auth_failed",
            Self::RetriesExhausted { .. } => "model_retries_exhausted",
            Self::ContextLengthExceeded { .. } => "context_length_exceeded",
            Self::BadRequest { .. } => "model_bad_request",
            Self::InvalidResponse { .. } => "model_invalid_response",
            Self::Config { .. } => "model_config_invalid",
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }
}
