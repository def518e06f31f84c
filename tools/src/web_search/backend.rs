//! The search APIs: how each is asked, and how its answer is read.
//!
//! Each backend is a JSON HTTP API configured by the operator ([`WebSearchBackend`]).
//! They are trusted endpoints (a SearxNG on localhost is normal), so requests do not go
//! through the SSRF guard; they do carry a timeout. API keys travel in headers marked
//! sensitive and are scrubbed from every error text.

use std::time::Duration;

use reqwest::header::{self, HeaderName, HeaderValue};
use reqwest::{Client, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::WebSearchBackend;
use crate::error::ToolError;
use crate::http_client::http_client_builder;

const BRAVE_DEFAULT_BASE: &str = "https://api.search.brave.com";
const TAVILY_DEFAULT_BASE: &str = "https://api.tavily.com";

/// Most bytes of an error response quoted back, to say what the backend complained of.
const ERROR_EXCERPT_CHARS: usize = 300;

/// One search result, before clean-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

#[derive(Debug)]
enum Api {
    Searxng,
    Brave { key: SecretString },
    Tavily { key: SecretString },
}

/// A configured search API with its client.
#[derive(Debug)]
pub struct SearchBackend {
    api: Api,
    endpoint: Url,
    /// The header carrying the API key, its value marked sensitive so it never prints.
    auth: Option<(HeaderName, HeaderValue)>,
    client: Client,
}

impl SearchBackend {
    pub fn new(config: &WebSearchBackend, timeout: Duration) -> Result<Self, ToolError> {
        let (api, base, path) = match config {
            WebSearchBackend::Searxng { base_url } => (Api::Searxng, base_url.as_str(), "/search"),
            WebSearchBackend::Brave { api_key, base_url } => (
                Api::Brave {
                    key: api_key.clone(),
                },
                base_url.as_deref().unwrap_or(BRAVE_DEFAULT_BASE),
                "/res/v1/web/search",
            ),
            WebSearchBackend::Tavily { api_key, base_url } => (
                Api::Tavily {
                    key: api_key.clone(),
                },
                base_url.as_deref().unwrap_or(TAVILY_DEFAULT_BASE),
                "/search",
            ),
        };
        let endpoint =
            Url::parse(&format!("{}{path}", base.trim_end_matches('/'))).map_err(|err| {
                ToolError::Fatal(format!(
                    "tools.web_search.backend.base_url `{base}` is not a valid URL: {err}"
                ))
            })?;
        let auth = auth_header(&api)?;
        let client = http_client_builder()
            .timeout(timeout)
            .build()
            .map_err(|err| {
                ToolError::Fatal(format!("cannot build the web search HTTP client: {err}"))
            })?;
        Ok(Self {
            api,
            endpoint,
            auth,
            client,
        })
    }

    /// "searxng", "brave", "tavily": how messages name the backend.
    pub fn name(&self) -> &'static str {
        match self.api {
            Api::Searxng => "searxng",
            Api::Brave { .. } => "brave",
            Api::Tavily { .. } => "tavily",
        }
    }

    fn request(&self, query: &str, count: usize) -> RequestBuilder {
        let builder = match self.api {
            Api::Searxng => self
                .client
                .get(self.endpoint.clone())
                .query(&[("q", query), ("format", "json")]),
            Api::Brave { .. } => self
                .client
                .get(self.endpoint.clone())
                .query(&[("q", query), ("count", &count.to_string())]),
            Api::Tavily { .. } => self
                .client
                .post(self.endpoint.clone())
                .json(&serde_json::json!({"query": query, "max_results": count})),
        };
        let builder = builder.header(header::ACCEPT, "application/json");
        match &self.auth {
            Some((name, value)) => builder.header(name.clone(), value.clone()),
            None => builder,
        }
    }

    /// Runs one search; at most `count` hits, in the backend's order.
    pub async fn search(&self, query: &str, count: usize) -> Result<Vec<SearchHit>, ToolError> {
        let response = self
            .request(query, count)
            .send()
            .await
            .map_err(|err| self.failure(&describe_error(&err)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| self.failure(&describe_error(&err)))?;
        if !status.is_success() {
            let excerpt: String = String::from_utf8_lossy(&body)
                .chars()
                .take(ERROR_EXCERPT_CHARS)
                .collect();
            return Err(self.failure(&format!(
                "the backend answered {status}: {}",
                excerpt.trim()
            )));
        }
        let mut hits = match self.api {
            Api::Searxng => parse::<ResultsList>(&body).map(ResultsList::into_hits),
            Api::Brave { .. } => parse::<BraveResponse>(&body).map(BraveResponse::into_hits),
            Api::Tavily { .. } => parse::<ResultsList>(&body).map(ResultsList::into_hits),
        }
        .map_err(|err| {
            self.failure(&format!(
                "the backend's answer is not the expected JSON ({err})"
            ))
        })?;
        hits.truncate(count);
        Ok(hits)
    }

    /// A backend failure for the model, with any trace of the API key removed.
    fn failure(&self, reason: &str) -> ToolError {
        let mut message = format!(
            "web search failed ({} backend): {reason}. Web search is unavailable for now; \
             proceed without it.",
            self.name()
        );
        if let Api::Brave { key } | Api::Tavily { key } = &self.api {
            let key = key.expose_secret();
            if !key.is_empty() {
                message = message.replace(key, "[redacted]");
            }
        }
        ToolError::Rejected(message)
    }
}

/// The header that carries the API's key: Brave's own, or a bearer token.
fn auth_header(api: &Api) -> Result<Option<(HeaderName, HeaderValue)>, ToolError> {
    let (name, key, prefix, api_name) = match api {
        Api::Searxng => return Ok(None),
        Api::Brave { key } => (
            HeaderName::from_static("x-subscription-token"),
            key,
            "",
            "brave",
        ),
        Api::Tavily { key } => (header::AUTHORIZATION, key, "Bearer ", "tavily"),
    };
    let mut value =
        HeaderValue::from_str(&format!("{prefix}{}", key.expose_secret())).map_err(|_| {
            ToolError::Fatal(format!(
                "the configured {api_name} API key has characters not allowed in an HTTP header"
            ))
        })?;
    value.set_sensitive(true);
    Ok(Some((name, value)))
}

/// What went wrong, without the request URL reqwest puts in its own message.
fn describe_error(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "the backend did not answer in time".into();
    }
    let mut current: &dyn std::error::Error = err;
    while let Some(source) = current.source() {
        current = source;
    }
    if err.is_connect() {
        format!("could not connect to the backend: {current}")
    } else {
        format!("the request failed: {current}")
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// SearxNG and Tavily: `{"results": [{"title", "url", "content"}]}`.
#[derive(Debug, Deserialize)]
struct ResultsList {
    #[serde(default)]
    results: Vec<RawHit>,
}

impl ResultsList {
    fn into_hits(self) -> Vec<SearchHit> {
        self.results
            .into_iter()
            .filter_map(RawHit::into_hit)
            .collect()
    }
}

/// Brave: `{"web": {"results": [{"title", "url", "description"}]}}`; no `web` means no
/// web results.
#[derive(Debug, Deserialize)]
struct BraveResponse {
    #[serde(default)]
    web: Option<ResultsList>,
}

impl BraveResponse {
    fn into_hits(self) -> Vec<SearchHit> {
        self.web.map(ResultsList::into_hits).unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
struct RawHit {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// SearxNG and Tavily.
    #[serde(default)]
    content: Option<String>,
    /// Brave.
    #[serde(default)]
    description: Option<String>,
}

impl RawHit {
    /// A hit without a URL is of no use; one without a title is shown by its URL.
    fn into_hit(self) -> Option<SearchHit> {
        let url = self.url.filter(|url| !url.trim().is_empty())?;
        Some(SearchHit {
            title: self.title.unwrap_or_default(),
            url,
            snippet: self.content.or(self.description).unwrap_or_default(),
        })
    }
}
