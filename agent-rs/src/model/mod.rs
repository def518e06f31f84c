//! The model client: one streamed Chat Completions turn against any OpenAI-compatible
//! server (OpenAI, Azure, Gemini's compatible endpoint, vLLM, Ollama, llama.cpp, TGI,
//! DeepSeek, Qwen, Mistral, Groq, xAI, OpenRouter...), with the retries a long agent run
//! needs.
//!
//! The agent loop builds a [`ChatRequest`] (conversation + tool specs, borrowed), calls
//! [`ModelClient::complete`], and gets back text, tool calls and token usage, or a
//! [`ModelError`] that says whether to give up or shorten the conversation.
//!
//! How it is built, and why:
//! - **Our own wire layer, read leniently.** "OpenAI-compatible" servers stream tool
//!   calls in a dozen slightly different shapes (recorded in the tests); a strict reader
//!   (async-openai's, used before) failed a third of them outright, its SSE decoder took
//!   time quadratic in a long line (a 20 MB tool call took ~50 s), and its errors dropped
//!   the headers a retry needs. The body is serialised by reference from the conversation
//!   (`request.rs`), sent once with `reqwest` (`transport.rs`), decoded by `sse-stream`
//!   in one pass, and each chunk read into types where every field is optional
//!   (`chunk.rs`) and folded into one answer (`stream.rs`).
//! - **Whole-turn retries.** 429, 408, 5xx, connection failures, timeouts, streams that
//!   break off or end without a `finish_reason` or `[DONE]`, and errors the server puts
//!   in the stream are retried from scratch (partial deltas are dropped; the caller sees
//!   [`ModelEvent::Retrying`] first), with exponential backoff and jitter, or the
//!   server's own hint (`Retry-After` in seconds or as a date, rate-limit reset headers).
//!   Bounded by `max_retries` *and* `max_retry_elapsed` (`backoff.rs`). 401/403, other
//!   4xx and unreadable answers fail at once (`classify.rs`).
//! - **Schemas the endpoint accepts.** Tool schemas go out whole, or rewritten into the
//!   subset strict validators accept (`schema.rs`): for endpoints known to be strict, by
//!   configuration, or after a 400 that blames them.
//! - **Models without tool calling** get the tools as text (`text_tools.rs`).
//! - **Idle timeout.** `request_timeout` bounds the wait for the response headers and
//!   each wait between two chunks, not the whole turn: a slow local model streaming a
//!   long answer is fine as long as it keeps sending, while a server that goes silent is
//!   caught. The loop's own wall-time limit bounds the turn as a whole.
//! - **The key stays secret.** It is held as a `SecretString`, sent as a header
//!   marked sensitive, and replaced in any server text that reaches an error or event.

mod backoff;
mod chunk;
mod classify;
mod error;
mod request;
mod schema;
mod settings;
mod stream;
mod text_tools;
mod transport;
mod types;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use tokio::time::{Instant, timeout};

use backoff::RetryPolicy;
use chunk::Chunk;
use classify::{
    AttemptFailure, Sanitizer, blames_tool_schemas, classify_send_failure, classify_stream_error,
    classify_stream_fault, undecodable_chunk,
};
use stream::{StreamAssembler, StreamFault};
use transport::Endpoint;

pub use error::ModelError;
pub use schema::portable_schema;
pub use settings::{ModelSettings, SchemaDialect, TokenLimitField, ToolCalling};
pub use text_tools::tool_instructions;
pub use types::{ChatMessage, ChatRequest, ModelEvent, ModelResponse, ToolCall, Usage};

/// A handle on one model endpoint; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct ModelClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ModelSettings,
    endpoint: Endpoint,
    policy: RetryPolicy,
    sanitizer: Sanitizer,
    /// Whether tool schemas go out in the portable dialect (see `schema.rs`); starts from
    /// the settings and the endpoint, and flips once if the server rejects full schemas.
    portable_schemas: AtomicBool,
    /// Source of the ids made up for calls that came without one.
    next_call_id: AtomicU64,
    /// The tool definitions and the messages as last serialised (see `request.rs`).
    request_cache: Mutex<request::RequestCache>,
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
        let endpoint = Endpoint::new(
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
        let portable = match settings.tool_schema {
            SchemaDialect::Full => false,
            SchemaDialect::Portable => true,
            SchemaDialect::Auto => schema::is_strict_endpoint(&settings.base_url),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                endpoint,
                policy,
                sanitizer,
                portable_schemas: AtomicBool::new(portable),
                next_call_id: AtomicU64::new(1),
                request_cache: Mutex::new(request::RequestCache::default()),
            }),
        })
    }

    pub fn settings(&self) -> &ModelSettings {
        &self.inner.settings
    }

    /// Whether tool schemas are sent in the portable dialect right now.
    pub fn sends_portable_schemas(&self) -> bool {
        self.inner.portable_schemas.load(Ordering::Relaxed)
    }

    /// One model turn, streamed; `on_event` sees retries and text deltas as they happen.
    pub async fn complete(
        &self,
        request: &ChatRequest<'_>,
        on_event: &mut (dyn FnMut(ModelEvent) + Send),
    ) -> Result<ModelResponse, ModelError> {
        let inner = &*self.inner;
        let mut portable = self.sends_portable_schemas();
        let mut body = self.request_body(request, portable);
        let mut attempt: u32 = 1;
        let mut first_failure: Option<Instant> = None;
        let mut only_connect_failures = true;
        loop {
            tracing::debug!(attempt, model = %inner.settings.model, "model request");
            let (reason, retry_after, connect) =
                match self.attempt(body.clone(), request, attempt, on_event).await {
                    Ok(response) => return Ok(response),
                    Err(AttemptFailure::Permanent(ModelError::BadRequest { status, message }))
                        if self.may_fall_back_to_portable(portable, request, status, &message) =>
                    {
                        // Not a retry of the same request: a different one, sent at once.
                        portable = true;
                        inner.portable_schemas.store(true, Ordering::Relaxed);
                        body = self.request_body(request, true);
                        attempt += 1;
                        let reason = format!(
                            "HTTP {status}: the server rejected the tool schemas ({message}); \
                             sending them in the portable dialect from now on"
                        );
                        tracing::warn!(%reason, "tool schemas rejected");
                        on_event(ModelEvent::Retrying {
                            attempt,
                            reason,
                            wait: std::time::Duration::ZERO,
                        });
                        continue;
                    }
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

    fn request_body(&self, request: &ChatRequest<'_>, portable: bool) -> Bytes {
        let inner = &*self.inner;
        // A panic elsewhere cannot leave the cache half-written: it is replaced whole.
        let mut cache = inner
            .request_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Bytes::from(request::request_body_cached(
            &inner.settings,
            request,
            portable,
            &mut cache,
        ))
    }

    /// A 400 over the tool schemas, under `auto`, while full schemas were sent.
    fn may_fall_back_to_portable(
        &self,
        portable: bool,
        request: &ChatRequest<'_>,
        status: u16,
        message: &str,
    ) -> bool {
        !portable
            && self.inner.settings.tool_schema == SchemaDialect::Auto
            && self.inner.settings.tool_calling == ToolCalling::Native
            && !request.tools.is_empty()
            && blames_tool_schemas(status, message)
    }

    /// One HTTP request and its stream, read to the end.
    async fn attempt(
        &self,
        body: Bytes,
        request: &ChatRequest<'_>,
        attempt: u32,
        on_event: &mut (dyn FnMut(ModelEvent) + Send),
    ) -> Result<ModelResponse, AttemptFailure> {
        let inner = &*self.inner;
        let idle = inner.settings.request_timeout;
        let response = match timeout(idle, inner.endpoint.send(body)).await {
            Err(_) => {
                return Err(AttemptFailure::transient(format!(
                    "no response from the model server within {idle:?}"
                )));
            }
            Ok(Err(failure)) => return Err(classify_send_failure(failure, &inner.sanitizer)),
            Ok(Ok(response)) => response,
        };
        let events = transport::event_stream(response);
        let mut events = std::pin::pin!(events);
        let mut assembler = StreamAssembler::default();
        loop {
            let event = match timeout(idle, events.next()).await {
                Err(_) => {
                    return Err(AttemptFailure::transient(format!(
                        "the response stream stalled: nothing received for {idle:?}"
                    )));
                }
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    return Err(classify_stream_error(&error, &inner.sanitizer));
                }
                Ok(Some(Ok(event))) => event,
            };
            let Some(data) = event.data.as_deref().map(str::trim) else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                assembler.mark_done();
                break;
            }
            if event.event.as_deref() == Some("error") {
                let error =
                    serde_json::from_str(data).unwrap_or_else(|_| serde_json::Value::from(data));
                let fault = StreamFault::ServerError(error);
                return Err(classify_stream_fault(fault, &inner.sanitizer));
            }
            let chunk: Chunk = serde_json::from_str(data)
                .map_err(|error| undecodable_chunk(&error, data, &inner.sanitizer))?;
            match assembler.push(chunk) {
                Ok(Some(text)) => on_event(ModelEvent::ContentDelta(text)),
                Ok(None) => {}
                Err(fault) => return Err(classify_stream_fault(fault, &inner.sanitizer)),
            }
        }
        if !assembler.is_finished() {
            return Err(AttemptFailure::transient(
                "the response stream ended before the model finished (no finish_reason)",
            ));
        }
        Ok(self.finish(assembler, request, attempt))
    }

    /// The response: ids made up where missing, calls written as text picked up, usage
    /// estimated when the server sent none.
    fn finish(
        &self,
        assembler: StreamAssembler,
        request: &ChatRequest<'_>,
        attempt: u32,
    ) -> ModelResponse {
        let mut next_id = || {
            let n = self.inner.next_call_id.fetch_add(1, Ordering::Relaxed);
            format!("call_agent_{n}")
        };
        let text_calls = text_tools::extract_calls(assembler.content());
        let (mut response, _) = assembler.finish(attempt, &mut next_id);
        if response.tool_calls.is_empty()
            && let Some((rest, calls)) = text_calls
        {
            response.content = rest;
            response.tool_calls = calls
                .into_iter()
                .map(|call| ToolCall {
                    id: next_id(),
                    name: call.name,
                    arguments: call.arguments,
                })
                .collect();
        }
        if response.usage_estimated {
            response.usage = types::estimate_usage(request, &response);
        }
        response
    }
}
