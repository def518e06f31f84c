//! The HTTP side of a turn: send the body once, hand back the event stream or what went
//! wrong with every detail the retry loop needs.
//!
//! Plain `reqwest`, no retries of its own (the client's loop decides, bounded in count and
//! time), and a server-sent-events decoder (`sse-stream`) that reads each byte once: a
//! 20 MB tool call costs time in proportion to its size. Failed answers keep their status,
//! body and the server's hint of when to come back: `Retry-After` as seconds or as an HTTP
//! date, Azure's `retry-after-ms`, or the `x-ratelimit-reset-*` headers of OpenAI, Groq
//! and OpenRouter.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};

use super::ModelError;

/// Where the chat endpoint is and how to authenticate to it; nothing is read from the
/// environment.
#[derive(Debug)]
pub(super) struct Endpoint {
    http: reqwest::Client,
    /// Parsed once: parsing it for every request cost more than the rest of the request's
    /// preparation.
    url: reqwest::Url,
    /// Prebuilt and marked sensitive, so it is hidden from header debug output.
    authorization: Option<HeaderValue>,
}

/// Why a request produced no event stream.
#[derive(Debug)]
pub(super) enum SendFailure {
    /// A non-2xx answer.
    Status(HttpStatusError),
    /// A 2xx JSON answer where a stream was asked for: a server that ignores `stream`.
    NotAStream { content_type: String, body: String },
    /// No answer at all (connection, timeout, protocol).
    Http(reqwest::Error),
}

/// A non-2xx answer.
#[derive(Debug)]
pub(super) struct HttpStatusError {
    pub(super) status: u16,
    /// When the server asked to be called again, from any of its headers.
    pub(super) retry_after: Option<Duration>,
    /// The raw body, not yet sanitized.
    pub(super) body: String,
}

impl Endpoint {
    pub(super) fn new(
        base_url: &str,
        api_key: Option<&SecretString>,
        connect_timeout: Duration,
    ) -> Result<Self, ModelError> {
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
        // Not `http_client_builder`: that one refuses proxies (for the SSRF guard), and a
        // model endpoint may well sit behind one.
        tools::http_client::install_tls_provider();
        let mut builder = reqwest::Client::builder().connect_timeout(connect_timeout);
        if base_url.starts_with("http://") {
            // A plain-HTTP endpoint (a local vLLM, Ollama, the scripted server) never
            // needs root certificates; skipping them saves milliseconds at every start.
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let http = builder.build().map_err(|error| {
            ModelError::config(format!("cannot set up the HTTP client: {error}"))
        })?;
        // The URL is not repeated: it may carry credentials.
        let url = reqwest::Url::parse(&chat_url(base_url)).map_err(|error| {
            ModelError::config(format!("the model base URL is not a valid URL: {error}"))
        })?;
        Ok(Self {
            http,
            url,
            authorization,
        })
    }

    #[cfg(test)]
    pub(super) fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }

    #[cfg(test)]
    pub(super) fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Posts `body` once; a 2xx answer comes back as its event stream.
    pub(super) async fn send(&self, body: Bytes) -> Result<reqwest::Response, SendFailure> {
        let mut request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "text/event-stream")
            .body(body);
        if let Some(value) = &self.authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        let response = request.send().await.map_err(SendFailure::Http)?;
        if response.status().is_success() {
            let content_type = header_text(response.headers(), CONTENT_TYPE.as_str())
                .unwrap_or_default()
                .to_string();
            // Only a definite JSON answer is refused: servers label their streams loosely
            // (or not at all), and the stream decoder copes with those.
            if !content_type.starts_with("application/json") {
                return Ok(response);
            }
            let body = response.text().await.unwrap_or_default();
            return Err(SendFailure::NotAStream { content_type, body });
        }
        let status = response.status().as_u16();
        let retry_after = retry_hint(response.headers(), SystemTime::now());
        // An unreadable error body still leaves the status to act on.
        let body = response.text().await.unwrap_or_default();
        Err(SendFailure::Status(HttpStatusError {
            status,
            retry_after,
            body,
        }))
    }
}

/// `{base}/chat/completions`, whether or not the base ends in a slash.
fn chat_url(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim_end_matches('/'))
}

/// The body of a 2xx answer as server-sent events, decoded as the bytes arrive.
pub(super) fn event_stream(
    response: reqwest::Response,
) -> impl Stream<Item = Result<sse_stream::Sse, sse_stream::Error>> + Send {
    let bytes = futures_util::stream::unfold(response, |mut response| async move {
        match response.chunk().await {
            Ok(Some(bytes)) => Some((Ok::<Bytes, reqwest::Error>(bytes), response)),
            Ok(None) => None,
            Err(error) => Some((Err(error), response)),
        }
    });
    decode_events(bytes)
}

/// Server-sent events from body pieces as they arrive. Each byte is looked at once,
/// however the body is cut: a line split over many pieces is gathered, never re-read.
pub(super) fn decode_events<S, E>(
    bytes: S,
) -> impl Stream<Item = Result<sse_stream::Sse, sse_stream::Error>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    sse_stream::SseByteStream::new(bytes)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// When the server asked to be called again: `Retry-After` (seconds or HTTP date), then
/// `retry-after-ms`, then the `x-ratelimit-reset-*` headers of the exhausted limit.
pub(super) fn retry_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(wait) =
        header_text(headers, RETRY_AFTER.as_str()).and_then(|value| parse_retry_after(value, now))
    {
        return Some(wait);
    }
    if let Some(millis) = header_text(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && millis.is_finite()
        && millis >= 0.0
    {
        return Duration::try_from_secs_f64(millis / 1000.0).ok();
    }
    rate_limit_reset(headers, now)
}

/// `Retry-After` as delta-seconds (fractions tolerated) or as an HTTP date. A date in
/// the past means "now".
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::try_from_secs_f64(seconds).ok())
            .flatten();
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The reset of the limit that ran out. OpenAI and Groq send durations
/// (`x-ratelimit-reset-requests: 1s`, `x-ratelimit-reset-tokens: 6m0s`); OpenRouter and
/// others an epoch time in seconds or milliseconds (`x-ratelimit-reset`). When the
/// `remaining` headers say which limit is spent, its reset is used; otherwise the latest.
fn rate_limit_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let limits = [
        (
            "x-ratelimit-reset-requests",
            Some("x-ratelimit-remaining-requests"),
        ),
        (
            "x-ratelimit-reset-tokens",
            Some("x-ratelimit-remaining-tokens"),
        ),
        ("x-ratelimit-reset", Some("x-ratelimit-remaining")),
    ];
    let mut spent = Vec::new();
    let mut all = Vec::new();
    for (reset, remaining) in limits {
        let Some(wait) = header_text(headers, reset).and_then(|v| parse_reset(v, now)) else {
            continue;
        };
        all.push(wait);
        let exhausted = remaining
            .and_then(|name| header_text(headers, name))
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|left| left <= 0.0);
        if exhausted {
            spent.push(wait);
        }
    }
    spent.into_iter().max().or_else(|| all.into_iter().max())
}

/// A reset value: a Go-style duration (`1h2m3.5s`, `20ms`), or a bare number, read as
/// epoch milliseconds, epoch seconds or seconds to wait by its size.
pub(super) fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(number) = value.parse::<f64>() {
        if !number.is_finite() || number < 0.0 {
            return None;
        }
        let epoch_seconds = if number >= 1e12 {
            number / 1000.0
        } else if number >= 1e9 {
            number
        } else {
            return Duration::try_from_secs_f64(number).ok();
        };
        let at = SystemTime::UNIX_EPOCH + Duration::try_from_secs_f64(epoch_seconds).ok()?;
        return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
    }
    parse_go_duration(value)
}

fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0_f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
