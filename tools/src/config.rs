//! The tools' configuration: one typed struct, loaded once by the binary (file + env) and
//! passed down. Nothing in this crate reads the environment on its own, except the shell
//! tool deciding which variables a child process must not inherit.
//!
//! Every field has a default that suits a local run, so `ToolsConfig::default()` is a
//! working configuration; a TOML table with any subset of the fields overrides them.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use crate::sandbox::SandboxConfig;

/// Configuration of all built-in tools.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    /// Most bytes of one tool result (or error) the model is sent, whatever the tool: the
    /// registry keeps the head and the tail of anything longer. Each tool keeps its own
    /// results well under it, centred on what matters; this is the backstop.
    pub result_max_bytes: usize,
    pub shell: ShellConfig,
    pub files: FilesConfig,
    pub search: SearchConfig,
    pub web_search: WebSearchConfig,
    pub call_api: CallApiConfig,
    /// The sandbox shell commands run in (`[tools.sandbox]`).
    pub sandbox: SandboxConfig,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            result_max_bytes: 100_000,
            shell: ShellConfig::default(),
            files: FilesConfig::default(),
            search: SearchConfig::default(),
            web_search: WebSearchConfig::default(),
            call_api: CallApiConfig::default(),
            sandbox: SandboxConfig::default(),
        }
    }
}

/// `run_shell_command`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShellConfig {
    /// Timeout when the model gives none.
    pub default_timeout_secs: u64,
    /// The most the model may ask for.
    pub max_timeout_secs: u64,
    /// Bytes kept per stream (stdout, stderr); beyond it the head and tail are kept.
    pub output_cap_bytes: usize,
    /// Extra environment variable names never passed to commands, on top of the built-in
    /// list (`OPENAI_API_KEY`, `GITHUB_TOKEN`, ...) and names that look like credentials.
    pub secret_env_vars: Vec<String>,
}

impl Default for ShellConfig {
    fn default() -> Self {
        Self {
            default_timeout_secs: 120,
            max_timeout_secs: 600,
            output_cap_bytes: 30_000,
            secret_env_vars: Vec::new(),
        }
    }
}

impl ShellConfig {
    pub fn default_timeout(&self) -> Duration {
        Duration::from_secs(self.default_timeout_secs)
    }
}

/// `read_file_content`, `edit_file_content`, `apply_patch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Most bytes of file text returned by one read.
    pub read_max_bytes: usize,
    /// Most lines returned by one read.
    pub read_max_lines: usize,
    /// Largest file the edit tools will load.
    pub edit_max_file_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            read_max_bytes: 100_000,
            read_max_lines: 2_000,
            edit_max_file_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `search_code` and `list_directory`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    pub default_max_results: usize,
    pub max_results_cap: usize,
    /// Longest matched line shown; longer ones are cut.
    pub max_line_chars: usize,
    /// Most entries `list_directory` shows.
    pub list_max_entries: usize,
    /// Threads walking the tree; 0 means one per core.
    pub threads: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            default_max_results: 100,
            max_results_cap: 2_000,
            max_line_chars: 300,
            list_max_entries: 1_000,
            threads: 0,
        }
    }
}

/// `web_search_doc_and_reference`: which search API answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSearchConfig {
    pub backend: Option<WebSearchBackend>,
    pub timeout_secs: u64,
    pub max_results_cap: usize,
}

impl Default for WebSearchConfig {
    fn default() -> Self {
        Self {
            backend: None,
            timeout_secs: 20,
            max_results_cap: 20,
        }
    }
}

/// A JSON search API.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WebSearchBackend {
    /// A SearxNG instance (`GET {base_url}/search?format=json`).
    Searxng { base_url: String },
    /// Brave Search API (`X-Subscription-Token`).
    Brave {
        api_key: SecretString,
        #[serde(default)]
        base_url: Option<String>,
    },
    /// Tavily (`POST /search` with a bearer key).
    Tavily {
        api_key: SecretString,
        #[serde(default)]
        base_url: Option<String>,
    },
}

/// `call_api`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallApiConfig {
    /// Hosts (names or IP literals, optionally `host:port`) allowed even when they resolve
    /// to loopback, private, link-local or metadata addresses.
    pub allow_hosts: Vec<String>,
    /// Most response-body bytes returned to the model.
    pub max_response_bytes: usize,
    pub default_timeout_secs: u64,
    pub max_timeout_secs: u64,
    pub max_redirects: usize,
}

impl Default for CallApiConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            max_response_bytes: 100_000,
            default_timeout_secs: 30,
            max_timeout_secs: 120,
            max_redirects: 5,
        }
    }
}
