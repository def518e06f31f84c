//! The agent's configuration: one typed struct, read once from a TOML file (`--config`
//! or `AGENT_CONFIG`) and passed down.

use std::path::Path;

use serde::Deserialize;
use tools::ToolsConfig;

/// Everything configurable about the agent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    pub tools: ToolsConfig,
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
