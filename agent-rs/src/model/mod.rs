//! The model client: one streamed Chat Completions turn against any OpenAI-compatible
//! server (OpenAI, vLLM, Ollama, DeepSeek, Qwen...), with the retries a long agent run
//! needs.
//!
//! The agent loop builds a [`ChatRequest`] (conversation + tool specs), calls
//! [`ModelClient::complete`], and gets back text, tool calls and token usage, or a
//! [`ModelError`] that says whether to give up or shorten the conversation.
//!
//! How it is built, and why:
//! - **async-openai for the protocol.** Its request and stream-chunk types do the
//!   (de)serialisation and its client does the SSE parsing. Its HTTP layer is replaced
//!   through its tower middleware hook (`transport.rs`): async-openai's error for a failed
//!   status drops the response headers, so `Retry-After` would be lost, and its built-in
//!   retry layer cannot be bounded by elapsed time nor retry a stream that breaks after
//!   the headers arrived. Our service sends each request exactly once and hands status,
//!   `Retry-After` and body back; the retry loop here decides.
//! - **Whole-turn retries.** 429, 408, 5xx, connection failures, timeouts and streams
//!   that break off or end without a `finish_reason` are retried from scratch (partial
//!   deltas are dropped; the caller sees [`ModelEvent::Retrying`] first), with
//!   exponential backoff and jitter, or the server's `Retry-After` when it sent one.
//!   Bounded by `max_retries` *and* `max_retry_elapsed` (`backoff.rs`). 401/403, other
//!   4xx and unreadable answers fail at once (`classify.rs`).
//! - **Idle timeout.** `request_timeout` bounds the wait for the response headers and
//!   each wait between two chunks, not the whole turn: a slow local model streaming a
//!   long answer is fine as long as it keeps sending, while a server that goes silent is
//!   caught. The loop's own wall-time limit bounds the turn as a whole.
//! - **The key stays secret.** It is held as a [`SecretString`], sent as a header
//!   marked sensitive, and replaced in any server text that reaches an error or event.

mod backoff;
mod classify;
mod error;
mod stream;
mod transport;
mod types;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_openai::types::chat::CreateChatCompletionRequest;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::{Instant, timeout};

use backoff::RetryPolicy;
use classify::{AttemptFailure, Sanitizer, classify_openai_error};
use stream::StreamAssembler;
use transport::EndpointConfig;

pub use error::ModelError;
pub use types::{ChatMessage, ChatRequest, ModelEvent, ModelResponse, ToolCall, Usage};

/// Which server and model to talk to, and how patiently.
#[derive(Clone, Debug)]
pub struct ModelSettings {
    /// The API root including the version, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer ...` when present (local servers often need none).
    pub api_key: Option<SecretString>,
    pub model: String,
    /// Longest wait for the response to start and between two stream chunks.
    pub request_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Time allowed for retrying, from the first failure.
    pub max_retry_elapsed: Duration,
    /// First backoff step; doubled on each further retry.
    pub retry_base_delay: Duration,
    /// Ceiling on one backoff step.
    pub retry_max_delay: Duration,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
}

impl ModelSettings {
    /// Settings with the defaults below: generous enough for slow local models and
    /// rate-limited hosted ones.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            request_timeout: Duration::from_secs(300),
            max_retries: 6,
            max_retry_elapsed: Duration::from_secs(180),
            retry_base_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(30),
            temperature: None,
            max_output_tokens: None,
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        let url = reqwest::Url::parse(&self.base_url).map_err(|error| {
            ModelError::config(format!(
                "base URL `{}` is not a URL ({error}); expected e.g. http://127.0.0.1:8000/v1",
                self.base_url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ModelError::config(format!(
                "base URL `{}` must start with http:// or https://",
                self.base_url
            )));
        }
        if self.model.trim().is_empty() {
            return Err(ModelError::config("the model name is empty"));
        }
        if self.request_timeout.is_zero() {
            return Err(ModelError::config("request_timeout must be above zero"));
        }
        Ok(())
    }
}

/// A handle on one model endpoint; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct ModelClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ModelSettings,
    client: async_openai::Client<EndpointConfig>,
    policy: RetryPolicy,
    sanitizer: Sanitizer,
}

impl fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelClient")
            .field("base_url", &self.inner.settings.base_url)
            .field("model", &self.inner.settings.model)
            .finish_non_exhaustive()
    }
}

impl ModelClient {
    pub fn new(settings: ModelSettings) -> Result<Self, ModelError> {
        settings.validate()?;
        let client = transport::build_client(
            &settings.base_url,
            settings.api_key.as_ref(),
            settings.request_timeout,
        )?;
        let policy = RetryPolicy {
            max_retries: settings.max_retries,
            max_elapsed: settings.max_retry_elapsed,
            base_delay: settings.retry_base_delay,
            max_delay: settings.retry_max_delay,
        };
        let sanitizer = Sanitizer::new(
            settings
                .api_key
                .iter()
                .map(|key| key.expose_secret().to_string()),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                client,
                policy,
                sanitizer,
            }),
        })
    }

    pub fn settings(&self) -> &ModelSettings {
        &self.inner.settings
    }

    /// One model turn, streamed; `on_event` sees retries and text deltas as they happen.
    pub async fn complete(
        &self,
        request: &ChatRequest,
        on_event: &mut (dyn FnMut(ModelEvent) + Send),
    ) -> Result<ModelResponse, ModelError> {
        let inner = &*self.inner;
        let wire_request = wire::chat_completion_request(&inner.settings, request);
        let mut attempt: u32 = 1;
        let mut first_failure: Option<Instant> = None;
        let mut only_connect_failures = true;
        loop {
            tracing::debug!(attempt, model = %inner.settings.model, "model request");
            let (reason, retry_after, connect) = match self
                .attempt(wire_request.clone(), request, attempt, on_event)
                .await
            {
                Ok(response) => return Ok(response),
                Err(AttemptFailure::Permanent(error)) => return Err(error),
                Err(AttemptFailure::Transient {
                    reason,
                    retry_after,
                    connect,
                }) => (reason, retry_after, connect),
            };
            only_connect_failures &= connect;
            let since_first_failure = first_failure.get_or_insert_with(Instant::now).elapsed();
            let wait = inner.policy.wait_before(
                attempt,
                retry_after,
                since_first_failure,
                fastrand::f64(),
            );
            let Some(wait) = wait else {
                return Err(if only_connect_failures {
                    ModelError::Unreachable {
                        base_url: inner.settings.base_url.clone(),
                        attempts: attempt,
                        message: reason,
                    }
                } else {
                    ModelError::RetriesExhausted {
                        attempts: attempt,
                        last_error: reason,
                    }
                });
            };
            attempt += 1;
            tracing::warn!(attempt, ?wait, %reason, "model request failed; retrying");
            on_event(ModelEvent::Retrying {
                attempt,
                reason,
                wait,
            });
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP request and its stream, read to the end.
    async fn attempt(
        &self,
        wire_request: CreateChatCompletionRequest,
        request: &ChatRequest,
        attempt: u32,
        on_event: &mut (dyn FnMut(ModelEvent) + Send),
    ) -> Result<ModelResponse, AttemptFailure> {
        let inner = &*self.inner;
        let idle = inner.settings.request_timeout;
        let chat = inner.client.chat();
        let mut chunks = match timeout(idle, chat.create_stream(wire_request)).await {
            Err(_) => {
                return Err(AttemptFailure::transient(format!(
                    "no response from the model server within {idle:?}"
                )));
            }
            Ok(Err(error)) => return Err(classify_openai_error(error, &inner.sanitizer)),
            Ok(Ok(chunks)) => chunks,
        };
        let mut assembler = StreamAssembler::default();
        loop {
            match timeout(idle, chunks.next()).await {
                Err(_) => {
                    return Err(AttemptFailure::transient(format!(
                        "the response stream stalled: nothing received for {idle:?}"
                    )));
                }
                Ok(None) => break,
                Ok(Some(Err(error))) => return Err(classify_openai_error(error, &inner.sanitizer)),
                Ok(Some(Ok(chunk))) => {
                    if let Some(text) = assembler.push(chunk) {
                        on_event(ModelEvent::ContentDelta(text));
                    }
                }
            }
        }
        if !assembler.is_finished() {
            return Err(AttemptFailure::transient(
                "the response stream ended before the model finished (no finish_reason)",
            ));
        }
        Ok(assembler.finish(request, attempt))
    }
}
