//! `web_search_doc_and_reference`: looking things up on the web (library docs, API
//! references, error messages) through a search API the operator configured.
//!
//! The backend ([`backend`]) is chosen by `tools.web_search.backend`; without one the
//! tool still answers, telling the model search is unavailable, so a run never fails for
//! lack of it. Results come back as a numbered list of title, URL and plain-text snippet
//! ([`snippet`]).

mod backend;
mod snippet;

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::config::WebSearchConfig;
use crate::error::ToolError;
use crate::tool::{Tool, ToolContext, ToolOutput, parse_args, schema_for};

use backend::{SearchBackend, SearchHit};

pub const TOOL_NAME: &str = "web_search_doc_and_reference";

/// What the model reads when no backend is configured.
pub const NOT_CONFIGURED: &str = "Web search is not configured here, so no search was \
     made. Proceed without it: use the workspace (README, docs, source, dependency \
     sources) and what you already know.";

fn default_num_results() -> usize {
    5
}

/// The arguments of `web_search_doc_and_reference`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSearchArgs {
    /// What to look for: keywords, an API or library name, an error message.
    pub query: String,
    /// How many results to return (default 5).
    #[serde(default = "default_num_results")]
    pub num_results: usize,
}

/// Web search through the configured backend, if any.
#[derive(Debug)]
pub struct WebSearchTool {
    backend: Option<SearchBackend>,
    max_results_cap: usize,
}

impl WebSearchTool {
    /// Fails when the backend's base URL or API key cannot be used at all.
    pub fn new(config: &WebSearchConfig) -> Result<Self, ToolError> {
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let backend = config
            .backend
            .as_ref()
            .map(|backend| SearchBackend::new(backend, timeout))
            .transpose()?;
        Ok(Self {
            backend,
            max_results_cap: config.max_results_cap.max(1),
        })
    }
}

#[async_trait]
impl Tool for WebSearchTool {
    fn name(&self) -> &'static str {
        TOOL_NAME
    }

    fn description(&self) -> &'static str {
        "Search the web for documentation and references: library and API docs, error \
         messages, specifications. Returns a numbered list of results (title, URL, \
         snippet). Use specific technical keywords."
    }

    fn parameters(&self) -> serde_json::Value {
        schema_for::<WebSearchArgs>()
    }

    fn mutates(&self) -> bool {
        false
    }

    async fn call(
        &self,
        _ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: WebSearchArgs = parse_args(TOOL_NAME, args)?;
        let query = args.query.trim();
        if query.is_empty() {
            return Err(ToolError::InvalidArguments {
                tool: TOOL_NAME,
                message: "`query` is empty; give the words to search for".into(),
            });
        }
        let Some(backend) = &self.backend else {
            return Ok(
                ToolOutput::success(NOT_CONFIGURED).with_details(json!({"configured": false}))
            );
        };
        let count = args.num_results.clamp(1, self.max_results_cap);
        let hits = backend.search(query, count).await?;
        Ok(
            ToolOutput::success(render(query, &hits)).with_details(json!({
                "backend": backend.name(),
                "results": hits.len(),
            })),
        )
    }
}

fn render(query: &str, hits: &[SearchHit]) -> String {
    if hits.is_empty() {
        return format!("No web results for \"{query}\". Try other or fewer keywords.");
    }
    let mut text = format!("Web results for \"{query}\":\n");
    for (index, hit) in hits.iter().enumerate() {
        let title = snippet::plain_text(&hit.title);
        let title = if title.is_empty() {
            hit.url.as_str()
        } else {
            &title
        };
        text.push_str(&format!(
            "\n{}. {title}\n   {}\n",
            index + 1,
            hit.url.trim()
        ));
        let snippet = snippet::plain_text(&hit.snippet);
        if !snippet.is_empty() {
            text.push_str(&format!("   {snippet}\n"));
        }
    }
    text
}
