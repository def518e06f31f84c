//! The `[mcp]` table of the agent's configuration: which MCP servers to start and how
//! long to wait on them.
//!
//! ```toml
//! [mcp]
//! startup_timeout_secs = 30      # spawn (or connect), initialize and list tools
//! call_timeout_secs = 120        # one tool call
//!
//! [mcp.servers.files]            # a stdio server: a command the agent starts
//! command = "npx"
//! args = ["-y", "@modelcontextprotocol/server-filesystem", "."]
//! env = { LOG_LEVEL = "info" }   # added to a clean environment (no credentials)
//!
//! [mcp.servers.docs]             # a streamable HTTP server
//! url = "https://mcp.example.com/mcp"
//! headers = { Authorization = "Bearer ..." }
//! enabled_tools = ["search"]     # optional allow-list; disabled_tools = [...] too
//! ```
//!
//! Server names become the prefix of their tools' names (`docs__search`), so they are
//! kept to what every model API accepts in a function name.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Everything about MCP servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    pub startup_timeout_secs: u64,
    pub call_timeout_secs: u64,
    pub servers: BTreeMap<String, McpServerConfig>,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            startup_timeout_secs: 30,
            call_timeout_secs: 120,
            servers: BTreeMap::new(),
        }
    }
}

/// One server: `command` (stdio) or `url` (streamable HTTP), never both.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpServerConfig {
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Working directory of a stdio server; default the workspace root.
    pub cwd: Option<String>,
    pub url: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// Only these tools are offered (all when absent).
    pub enabled_tools: Option<Vec<String>>,
    /// These tools are never offered.
    pub disabled_tools: Vec<String>,
    pub startup_timeout_secs: Option<u64>,
    pub call_timeout_secs: Option<u64>,
}

/// How to reach one server, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<String>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// A server ready to be started: its name, transport and limits.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub name: String,
    pub transport: Transport,
    pub enabled_tools: Option<Vec<String>>,
    pub disabled_tools: Vec<String>,
    pub startup_timeout: Duration,
    pub call_timeout: Duration,
}

/// Longest server name: with `__` and a tool name it must fit in 64 characters.
pub const MAX_SERVER_NAME: usize = 24;

impl McpConfig {
    /// The configured servers, checked; the error names the server and what to fix.
    pub fn server_specs(&self) -> Result<Vec<ServerSpec>, String> {
        if self.startup_timeout_secs == 0 || self.call_timeout_secs == 0 {
            return Err("[mcp] timeouts must be at least 1 second".into());
        }
        self.servers
            .iter()
            .map(|(name, server)| server.spec(name, self))
            .collect()
    }
}

impl McpServerConfig {
    fn spec(&self, name: &str, defaults: &McpConfig) -> Result<ServerSpec, String> {
        check_server_name(name)?;
        let transport = match (&self.command, &self.url) {
            (Some(command), None) => {
                if command.trim().is_empty() {
                    return Err(format!("[mcp.servers.{name}] command is empty"));
                }
                if !self.headers.is_empty() {
                    return Err(format!(
                        "[mcp.servers.{name}] headers are for url servers; a command server takes env"
                    ));
                }
                Transport::Stdio {
                    command: command.clone(),
                    args: self.args.clone(),
                    env: self.env.clone(),
                    cwd: self.cwd.clone(),
                }
            }
            (None, Some(url)) => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| format!("[mcp.servers.{name}] url `{url}` is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!(
                        "[mcp.servers.{name}] url must start with http:// or https://"
                    ));
                }
                if !self.args.is_empty() || !self.env.is_empty() || self.cwd.is_some() {
                    return Err(format!(
                        "[mcp.servers.{name}] args, env and cwd are for command servers; a url server takes headers"
                    ));
                }
                for header in self.headers.keys() {
                    reqwest::header::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                        format!("[mcp.servers.{name}] `{header}` is not an HTTP header name")
                    })?;
                }
                Transport::Http {
                    url: url.clone(),
                    headers: self.headers.clone(),
                }
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "[mcp.servers.{name}] give either command (stdio) or url (HTTP), not both"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "[mcp.servers.{name}] needs command (stdio) or url (HTTP)"
                ));
            }
        };
        let seconds = |own: Option<u64>, default: u64, what: &str| match own {
            Some(0) => Err(format!("[mcp.servers.{name}] {what} must be at least 1")),
            Some(value) => Ok(Duration::from_secs(value)),
            None => Ok(Duration::from_secs(default)),
        };
        Ok(ServerSpec {
            name: name.to_string(),
            transport,
            enabled_tools: self.enabled_tools.clone(),
            disabled_tools: self.disabled_tools.clone(),
            startup_timeout: seconds(
                self.startup_timeout_secs,
                defaults.startup_timeout_secs,
                "startup_timeout_secs",
            )?,
            call_timeout: seconds(
                self.call_timeout_secs,
                defaults.call_timeout_secs,
                "call_timeout_secs",
            )?,
        })
    }
}

/// A letter, then letters, digits, `-` or single `_`; no `__` (it separates server and
/// tool in a tool name).
fn check_server_name(name: &str) -> Result<(), String> {
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !starts_with_letter
        || !allowed
        || name.contains("__")
        || name.ends_with('_')
        || name.len() > MAX_SERVER_NAME
    {
        return Err(format!(
            "MCP server name `{name}` must start with a letter and hold only letters, digits, \
             `-` and single `_` (at most {MAX_SERVER_NAME} characters): it prefixes the tool names"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Vec<ServerSpec>, String> {
        let config: McpConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        config.server_specs()
    }

    #[test]
    fn stdio_and_http_servers_are_read_with_their_timeouts() {
        let specs = parse(
            "call_timeout_secs = 9\n\
             [servers.files]\ncommand = \"node\"\nargs = [\"s.js\"]\nenv = { A = \"1\" }\n\
             [servers.docs]\nurl = \"http://127.0.0.1:1/mcp\"\nheaders = { Authorization = \"Bearer x\" }\ncall_timeout_secs = 3\n",
        )
        .unwrap();
        assert_eq!(specs.len(), 2);
        let docs = &specs[0];
        assert_eq!(docs.name, "docs");
        assert!(matches!(&docs.transport, Transport::Http { url, .. } if url.ends_with("/mcp")));
        assert_eq!(docs.call_timeout, Duration::from_secs(3));
        let files = &specs[1];
        assert!(
            matches!(&files.transport, Transport::Stdio { command, args, .. } if command == "node" && args == &["s.js"])
        );
        assert_eq!(files.call_timeout, Duration::from_secs(9));
        assert_eq!(files.startup_timeout, Duration::from_secs(30));
    }

    #[test]
    fn a_server_needs_exactly_one_transport() {
        let both = parse("[servers.x]\ncommand = \"a\"\nurl = \"http://h/\"\n").unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let none = parse("[servers.x]\nargs = [\"a\"]\n").unwrap_err();
        assert!(none.contains("needs command"), "{none}");
        let mixed = parse("[servers.x]\nurl = \"http://h/\"\nenv = { A = \"1\" }\n").unwrap_err();
        assert!(mixed.contains("command servers"), "{mixed}");
        let scheme = parse("[servers.x]\nurl = \"file:///etc\"\n").unwrap_err();
        assert!(scheme.contains("http://"), "{scheme}");
    }

    #[test]
    fn server_names_must_fit_a_tool_name_prefix() {
        for bad in [
            "1x",
            "a__b",
            "a.b",
            "a b",
            "x_",
            "-x",
            "abcdefghijklmnopqrstuvwxyz",
        ] {
            let err = parse(&format!("[servers.\"{bad}\"]\ncommand = \"a\"\n")).unwrap_err();
            assert!(err.contains("must start with a letter"), "{bad}: {err}");
        }
        for good in ["a", "git-hub", "my_server2"] {
            parse(&format!("[servers.{good}]\ncommand = \"a\"\n")).unwrap();
        }
    }

    #[test]
    fn unknown_keys_and_zero_timeouts_are_refused() {
        assert!(
            parse("[servers.x]\ncommand = \"a\"\ntimeout = 3\n")
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(
            parse("[servers.x]\ncommand = \"a\"\ncall_timeout_secs = 0\n")
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            parse("startup_timeout_secs = 0\n")
                .unwrap_err()
                .contains("at least 1")
        );
    }
}
