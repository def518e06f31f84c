//! The agent's configuration: one typed struct, read once from a TOML file (`--config`
//! or `AGENT_CONFIG`) and passed down.

use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use tools::ToolsConfig;

use crate::mcp::McpConfig;
use crate::model::{SchemaDialect, TokenLimitField, ToolCalling};

/// Everything configurable about the agent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    pub model: ModelConfig,
    pub run: RunConfig,
    pub tools: ToolsConfig,
    pub mcp: McpConfig,
}

/// The model endpoint. Flags and `OPENAI_BASE_URL` / `OPENAI_API_KEY` / `AGENT_MODEL`
/// take precedence over these.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Any OpenAI-compatible Chat Completions endpoint, up to and including `/v1`.
    pub base_url: String,
    pub model: String,
    /// Prefer the `OPENAI_API_KEY` variable; a key here is for machines without one.
    pub api_key: Option<SecretString>,
    /// The model's context window, in tokens (old tool outputs are elided near it).
    pub context_window: u64,
    pub request_timeout_secs: u64,
    pub max_retries: u32,
    pub max_retry_elapsed_secs: u64,
    /// First backoff delay; doubles on each retry (with jitter).
    pub retry_base_delay_ms: u64,
    /// Longest backoff delay between two attempts.
    pub retry_max_delay_ms: u64,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    /// `auto` (`max_completion_tokens` for o-series and gpt-5, `max_tokens` otherwise),
    /// `max_tokens` or `max_completion_tokens`.
    pub token_limit_field: TokenLimitField,
    /// Sent as `reasoning_effort` when set (`minimal`, `low`, `medium`, `high`...).
    pub reasoning_effort: Option<String>,
    /// Ask for token usage in the stream (`stream_options.include_usage`).
    pub stream_usage: bool,
    /// `auto`, `full` or `portable`: the JSON Schema dialect of tool definitions.
    pub tool_schema: SchemaDialect,
    /// `native` (the API's tools) or `text` (`<tool_call>` blocks, for models without
    /// tool calling).
    pub tool_calling: ToolCalling,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4.1".into(),
            api_key: None,
            context_window: 128_000,
            request_timeout_secs: 300,
            max_retries: 5,
            max_retry_elapsed_secs: 180,
            retry_base_delay_ms: 1_000,
            retry_max_delay_ms: 30_000,
            temperature: None,
            max_output_tokens: None,
            token_limit_field: TokenLimitField::Auto,
            reasoning_effort: None,
            stream_usage: true,
            tool_schema: SchemaDialect::Auto,
            tool_calling: ToolCalling::Native,
        }
    }
}

/// Limits of one run; flags take precedence.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub max_turns: u32,
    pub max_tokens: Option<u64>,
    pub timeout_secs: u64,
    /// A setup script run in the workspace before the agent, with the network on and
    /// the variables named in `setup_env` (see `agent_rs::setup`).
    pub setup: Option<String>,
    /// Variables of the agent's environment given to the setup only, never to the
    /// agent's commands.
    pub setup_env: Vec<String>,
    pub setup_timeout_secs: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            max_turns: 50,
            max_tokens: None,
            timeout_secs: 1_800,
            setup: None,
            setup_env: Vec::new(),
            setup_timeout_secs: 600,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file `{path}` is invalid: {source}")]
    Parse {
        path: String,
        #[source]
        source: Box<toml::de::Error>,
    },
}

impl AgentConfig {
    /// Reads `path` when given; defaults otherwise.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: display,
            source: Box::new(source),
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_tables_override_defaults() {
        let config = AgentConfig::from_toml(
            "[tools.shell]\ndefault_timeout_secs = 5\n[tools.call_api]\nallow_hosts = [\"localhost\"]\n",
        )
        .unwrap();
        assert_eq!(config.tools.shell.default_timeout_secs, 5);
        assert_eq!(config.tools.shell.max_timeout_secs, 600);
        assert_eq!(config.tools.call_api.allow_hosts, vec!["localhost"]);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = AgentConfig::from_toml("[tools.shell]\ntimeout = 5\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
