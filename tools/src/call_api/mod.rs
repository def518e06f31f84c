//! `call_api`: one HTTP request from the model to an outside API.
//!
//! The model gives a method, URL, headers and body; the tool sends the request through a
//! client whose DNS resolver refuses internal addresses ([`crate::net_guard`]), follows
//! redirects itself so every hop is checked again ([`request`]), and reads at most
//! `max_response_bytes` of the answer ([`response`]). A call that ran gives the status,
//! a few response headers and the body; one that could not run (refused host, timeout,
//! connection refused) is a [`ToolError::Rejected`] the model can act on.

mod request;
mod response;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::CallApiConfig;
use crate::error::ToolError;
use crate::http_client::http_client_builder;
use crate::net_guard::{GuardedResolver, HostPolicy};
use crate::tool::{Tool, ToolContext, ToolOutput, parse_args, schema_for};

use request::Hop;

pub const TOOL_NAME: &str = "call_api";

/// The arguments of `call_api`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallApiArgs {
    /// HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.
    pub method: String,
    /// Absolute http:// or https:// URL, query string included.
    pub url: String,
    /// Request headers, header name to value.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Request body. A string is sent as it is; any other JSON value is sent as JSON
    /// (with `content-type: application/json` unless a content-type header is given).
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Seconds to wait for the whole exchange, redirects and body included.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// Sends HTTP requests to hosts the SSRF guard allows.
#[derive(Debug)]
pub struct CallApiTool {
    /// Built on first use: loading the system's root certificates costs milliseconds at
    /// every agent start, and most runs never call an API.
    client: std::sync::OnceLock<reqwest::Client>,
    policy: Arc<HostPolicy>,
    config: CallApiConfig,
}

impl CallApiTool {
    /// Fails when `allow_hosts` has a malformed entry or the HTTP client cannot be built:
    /// both are configuration faults to fix before a run.
    pub fn new(config: &CallApiConfig) -> Result<Self, ToolError> {
        let policy = Arc::new(
            HostPolicy::new(&config.allow_hosts)
                .map_err(|err| ToolError::Fatal(err.to_string()))?,
        );
        Ok(Self {
            client: std::sync::OnceLock::new(),
            policy,
            config: config.clone(),
        })
    }

    fn client(&self) -> Result<&reqwest::Client, ToolError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(GuardedResolver::new(Arc::clone(&self.policy)))
            .build()
            .map_err(|err| {
                ToolError::Fatal(format!(
                    "cannot build the HTTP client for {TOOL_NAME}: {err}"
                ))
            })?;
        // A concurrent first call may have won the race; either client will do.
        Ok(self.client.get_or_init(|| client))
    }

    /// The timeout the model asked for, within 1 s and the configured maximum.
    fn timeout(&self, requested: Option<u64>) -> Duration {
        let max = self.config.max_timeout_secs.max(1);
        let secs = requested
            .unwrap_or(self.config.default_timeout_secs)
            .clamp(1, max);
        Duration::from_secs(secs)
    }
}

#[async_trait]
impl Tool for CallApiTool {
    fn name(&self) -> &'static str {
        TOOL_NAME
    }

    fn description(&self) -> &'static str {
        "Send one HTTP request to an external API and read the response (status, main \
         headers, body). Use it for documented public HTTP APIs the task needs. Redirects \
         are followed; long bodies are cut. Requests to loopback, private-network, \
         link-local and cloud metadata addresses are refused unless the operator allowed \
         the host."
    }

    fn parameters(&self) -> serde_json::Value {
        schema_for::<CallApiArgs>()
    }

    fn mutates(&self) -> bool {
        true
    }

    async fn call(
        &self,
        _ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: CallApiArgs = parse_args(TOOL_NAME, args)?;
        let timeout = self.timeout(args.timeout_seconds);
        let hop = Hop::from_args(args)?;
        let target = hop.describe();
        let exchange = async {
            let followed =
                request::send(self.client()?, &self.policy, hop, self.config.max_redirects).await?;
            response::capture(followed, self.config.max_response_bytes).await
        };
        let captured = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                ToolError::rejected(format!(
                    "{target} timed out after {} s; the server did not answer in time (a \
                     larger timeout_seconds may help, up to {} s)",
                    timeout.as_secs(),
                    self.config.max_timeout_secs
                ))
            })??;
        Ok(captured.into_output())
    }
}
