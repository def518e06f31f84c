//! Which server and model the client talks to, how, and how patiently.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::ModelError;
pub use super::schema::SchemaDialect;

/// Which field carries the output-token limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenLimitField {
    /// `max_completion_tokens` for the model families that refuse `max_tokens` (OpenAI's
    /// o-series and gpt-5, under any provider prefix), `max_tokens` for everyone else
    /// (vLLM, Ollama, llama.cpp, DeepSeek... take only that one).
    #[default]
    Auto,
    MaxTokens,
    MaxCompletionTokens,
}

/// How tools reach the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCalling {
    /// The API's `tools` parameter; calls come back as `tool_calls`.
    #[default]
    Native,
    /// For models or servers without tool calling: tools are described in the system
    /// message and calls are written as `<tool_call>` blocks (`text_tools.rs`).
    Text,
}

/// Everything about one model endpoint.
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
    pub token_limit_field: TokenLimitField,
    /// Passed through as `reasoning_effort` (`low`, `medium`, `high`...) when set.
    pub reasoning_effort: Option<String>,
    /// Ask for usage in the stream (`stream_options.include_usage`); a few old servers
    /// refuse the option.
    pub stream_usage: bool,
    pub tool_schema: SchemaDialect,
    pub tool_calling: ToolCalling,
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
            token_limit_field: TokenLimitField::Auto,
            reasoning_effort: None,
            stream_usage: true,
            tool_schema: SchemaDialect::Auto,
            tool_calling: ToolCalling::Native,
        }
    }

    /// Whether the output limit goes in `max_completion_tokens`.
    pub fn uses_max_completion_tokens(&self) -> bool {
        match self.token_limit_field {
            TokenLimitField::MaxTokens => false,
            TokenLimitField::MaxCompletionTokens => true,
            TokenLimitField::Auto => needs_max_completion_tokens(&self.model),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ModelError> {
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
        if self
            .reasoning_effort
            .as_deref()
            .is_some_and(|effort| effort.trim().is_empty())
        {
            return Err(ModelError::config(
                "reasoning_effort is empty; leave it out or give a level such as `low`",
            ));
        }
        Ok(())
    }
}

/// OpenAI's reasoning families (o1, o3, o4-mini, gpt-5...) refuse `max_tokens`. The model
/// may carry a provider prefix (`openai/o3-mini` on OpenRouter, `azure/gpt-5`).
fn needs_max_completion_tokens(model: &str) -> bool {
    let name = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let o_series = name
        .strip_prefix('o')
        .is_some_and(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_digit()));
    o_series || name.starts_with("gpt-5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_families_use_max_completion_tokens_under_any_prefix() {
        for model in [
            "o1",
            "o3-mini",
            "o4-mini-2025-04-16",
            "gpt-5",
            "gpt-5-mini",
            "openai/o3",
            "azure/GPT-5.1",
        ] {
            assert!(needs_max_completion_tokens(model), "{model}");
        }
        for model in [
            "gpt-4.1",
            "gpt-4o",
            "qwen2.5-coder",
            "llama3.1",
            "deepseek-chat",
            "olmo-2",
            "openai/gpt-oss-120b",
        ] {
            assert!(!needs_max_completion_tokens(model), "{model}");
        }
    }

    #[test]
    fn the_token_limit_field_can_be_forced_either_way() {
        let mut settings = ModelSettings::new("http://h/v1", "gpt-4.1");
        assert!(!settings.uses_max_completion_tokens());
        settings.token_limit_field = TokenLimitField::MaxCompletionTokens;
        assert!(settings.uses_max_completion_tokens());
        settings.model = "o3".into();
        settings.token_limit_field = TokenLimitField::MaxTokens;
        assert!(!settings.uses_max_completion_tokens());
    }
}
