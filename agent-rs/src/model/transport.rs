//! The HTTP layer under async-openai's client.
//!
//! async-openai turns a failed HTTP status into an error that keeps the status and the
//! body but drops the headers, so `Retry-After` is lost, and its default executor retries
//! on its own terms (three times, no elapsed-time bound). This module installs, through
//! async-openai's tower middleware hook, a service without retries that turns every
//! non-2xx answer into an [`HttpStatusError`] carrying the status, `Retry-After` and body.
//! The client's retry loop then decides.
//!
//! [`EndpointConfig`] replaces `OpenAIConfig`, which reads `OPENAI_API_KEY` and friends
//! from the environment on its own (and could send that key to an unrelated server) and
//! panics on a key that is not a valid header value.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};

use super::ModelError;

/// Where the model server is and how to authenticate to it; nothing read from the
/// environment.
#[derive(Debug)]
pub(super) struct EndpointConfig {
    api_base: String,
    api_key: SecretString,
    /// Prebuilt and marked sensitive, so it is hidden from header debug output.
    authorization: Option<HeaderValue>,
}

impl EndpointConfig {
    pub(super) fn new(api_base: &str, api_key: Option<&SecretString>) -> Result<Self, ModelError> {
        let authorization = api_key
            .map(|key| {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                    .map_err(|_| {
                    ModelError::config(
                        "the API key contains characters that cannot go in an HTTP header \
                             (a stray newline?)",
                    )
                })?;
                value.set_sensitive(true);
                Ok::<_, ModelError>(value)
            })
            .transpose()?;
        Ok(Self {
            api_base: api_base.trim_end_matches('/').to_string(),
            api_key: api_key.cloned().unwrap_or_else(|| SecretString::from("")),
            authorization,
        })
    }
}

impl Config for EndpointConfig {
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = &self.authorization {
            headers.insert(AUTHORIZATION, value.clone());
        }
        headers
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_base, path)
    }

    fn query(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }

    fn api_base(&self) -> &str {
        &self.api_base
    }

    fn api_key(&self) -> &SecretString {
        &self.api_key
    }
}

/// A non-2xx answer, with what async-openai's own error would have dropped.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}")]
pub(super) struct HttpStatusError {
    pub(super) status: u16,
    pub(super) retry_after: Option<Duration>,
    /// The raw body, not yet sanitized.
    pub(super) body: String,
}

/// A 2xx answer that is plain JSON where an event stream was asked for: a server that
/// ignores `stream: true`. Retrying cannot change that.
#[derive(Debug, thiserror::Error)]
#[error("expected an event stream, got `{content_type}`")]
pub(super) struct NotAStreamError {
    pub(super) content_type: String,
    /// The raw body, not yet sanitized.
    pub(super) body: String,
}

/// Sends each request once; answers other than 2xx become [`HttpStatusError`]s, and a
/// JSON answer to a streaming request a [`NotAStreamError`].
#[derive(Clone, Debug)]
pub(super) struct StatusCapturingService {
    http: reqwest::Client,
}

impl StatusCapturingService {
    pub(super) fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send + 'static>>;

impl tower::Service<HttpRequestFactory> for StatusCapturingService {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let http = self.http.clone();
        Box::pin(async move {
            let request = factory.build().await?;
            let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
            if response.status().is_success() {
                let content_type = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                // Only a definite JSON answer is refused: servers label their streams
                // loosely (or not at all), and the stream parser copes with those.
                if !content_type.starts_with("application/json") {
                    return Ok(response);
                }
                let body = response.text().await.unwrap_or_default();
                return Err(OpenAIError::Boxed(Box::new(NotAStreamError {
                    content_type,
                    body,
                })));
            }
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_retry_after);
            // An unreadable error body still leaves the status to act on.
            let body = response.text().await.unwrap_or_default();
            Err(OpenAIError::Boxed(Box::new(HttpStatusError {
                status,
                retry_after,
                body,
            })))
        })
    }
}

/// `Retry-After` in delta-seconds (fractions tolerated). The HTTP-date form is not used
/// by the model servers this talks to and is ignored, falling back to backoff.
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::try_from_secs_f64(seconds).ok())
        .flatten()
}

/// The async-openai client for `base_url`, speaking through [`StatusCapturingService`].
pub(super) fn build_client(
    base_url: &str,
    api_key: Option<&SecretString>,
    connect_timeout: Duration,
) -> Result<async_openai::Client<EndpointConfig>, ModelError> {
    // Not `http_client_builder`: that one refuses proxies (for the SSRF guard), and a
    // model endpoint may well sit behind one.
    tools::http_client::install_tls_provider();
    let mut builder = reqwest::Client::builder().connect_timeout(connect_timeout);
    if base_url.starts_with("http://") {
        // A plain-HTTP endpoint (a local vLLM, Ollama, the scripted server) never needs
        // root certificates; skipping them saves milliseconds at every start.
        builder = builder.tls_certs_only(std::iter::empty());
    }
    let http = builder
        .build()
        .map_err(|error| ModelError::config(format!("cannot set up the HTTP client: {error}")))?;
    let config = EndpointConfig::new(base_url, api_key)?;
    Ok(async_openai::Client::build(http.clone(), config)
        .with_http_service(StatusCapturingService::new(http)))
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
