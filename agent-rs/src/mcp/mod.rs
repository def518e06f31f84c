//! MCP tools: the agent as a Model Context Protocol client.
//!
//! Servers configured under `[mcp.servers.NAME]` (see `config.rs`) are started once per
//! run, before the first request, and their tools are offered to the model beside the
//! built-in ones, named `NAME__tool` (`names.rs`). A call is forwarded with the server's
//! call timeout and its result (text, structured content, errors) comes back as a tool
//! result (`result.rs`). The protocol itself is the official Rust SDK's (`rmcp`).
//!
//! Failures stay contained: a server that does not start is reported in the trajectory
//! and in the system prompt and the run goes on without it; a call that times out is
//! cancelled and reported to the model; a server that dies mid-run makes its tools answer
//! with an error for the rest of the run. Servers' stderr goes to `agent.log` (redacted
//! like every log line), and their processes are killed when the run ends.

pub mod config;
mod connect;
mod names;
mod result;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::{Peer, RunningService, ServiceError};
use serde::Serialize;

pub use config::{McpConfig, McpServerConfig, ServerSpec};
pub use connect::StartContext;
pub use names::{MAX_TOOL_NAME, ToolNamer};
pub use result::{MAX_RESULT_BYTES, render_result};

use connect::ProcessGroup;

/// Where a server stands, as the trajectory records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    /// Started; its tools are offered.
    Ready,
    /// It could not be started; it has no tools in this run.
    Failed,
    /// It stopped answering during the run; its tools answer with an error.
    Stopped,
}

/// One server's state, for events and the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    pub server: String,
    pub status: ServerStatus,
    /// The model-facing names of its tools.
    pub tools: Vec<String>,
    pub error: Option<String>,
}

/// An MCP tool as the model sees it.
#[derive(Debug, Clone)]
pub struct McpTool {
    pub spec: tools::ToolSpec,
    /// Whether the server says the tool only reads (`readOnlyHint`); such calls may run
    /// side by side, the others run one at a time like writing built-in tools.
    pub read_only: bool,
    server: usize,
    /// The name the server knows it by.
    original: String,
}

/// What one call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct McpCallOutcome {
    pub content: String,
    pub success: bool,
    pub details: serde_json::Value,
}

struct Server {
    name: String,
    call_timeout: Duration,
    state: Mutex<State>,
    process_group: ProcessGroup,
}

enum State {
    Ready {
        peer: Peer<RoleClient>,
        running: Option<RunningService<RoleClient, ClientConfig>>,
    },
    Failed(String),
    /// Stopped during the run; `reported` once the loop has been told.
    Stopped {
        error: String,
        reported: bool,
    },
}

/// The run's MCP servers and their tools.
#[derive(Default)]
pub struct McpServers {
    servers: Vec<Server>,
    tools: BTreeMap<String, McpTool>,
}

impl std::fmt::Debug for McpServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServers")
            .field(
                "servers",
                &self.servers.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl McpServers {
    /// Starts every server at once; each that fails is kept as failed. `taken` are the
    /// names of the built-in tools.
    pub async fn start<'a>(
        specs: Vec<ServerSpec>,
        ctx: &StartContext<'_>,
        taken: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let started =
            futures_util::future::join_all(specs.iter().map(|spec| connect::connect(spec, ctx)))
                .await;
        let mut namer = ToolNamer::new(taken);
        let mut servers = Vec::with_capacity(specs.len());
        let mut tools = BTreeMap::new();
        for (index, (spec, outcome)) in specs.into_iter().zip(started).enumerate() {
            let state = match outcome {
                Ok(connection) => {
                    for tool in connection
                        .tools
                        .iter()
                        .filter(|tool| offered(&spec, &tool.name))
                    {
                        let name = namer.name(&spec.name, &tool.name);
                        tools.insert(name.clone(), mcp_tool(&spec.name, index, name, tool));
                    }
                    tracing::info!(server = %spec.name, tools = connection.tools.len(), "MCP server ready");
                    let process_group = connection.process_group;
                    servers.push(Server {
                        name: spec.name.clone(),
                        call_timeout: spec.call_timeout,
                        state: Mutex::new(State::Ready {
                            peer: connection.running.peer().clone(),
                            running: Some(connection.running),
                        }),
                        process_group,
                    });
                    continue;
                }
                Err(error) => {
                    tracing::warn!(server = %spec.name, %error, "MCP server failed to start");
                    State::Failed(error)
                }
            };
            servers.push(Server {
                name: spec.name,
                call_timeout: spec.call_timeout,
                state: Mutex::new(state),
                process_group: ProcessGroup(None),
            });
        }
        Self { servers, tools }
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The tools to offer, in name order.
    pub fn specs(&self) -> Vec<tools::ToolSpec> {
        self.tools.values().map(|tool| tool.spec.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&McpTool> {
        self.tools.get(name)
    }

    /// Every server's state.
    pub fn reports(&self) -> Vec<ServerReport> {
        self.servers
            .iter()
            .enumerate()
            .map(|(index, server)| self.report(index, server))
            .collect()
    }

    /// Servers that stopped since the last time this was asked.
    pub fn newly_stopped(&self) -> Vec<ServerReport> {
        let mut reports = Vec::new();
        for (index, server) in self.servers.iter().enumerate() {
            let mut state = lock(&server.state);
            if let State::Stopped { reported, .. } = &mut *state
                && !*reported
            {
                *reported = true;
                drop(state);
                reports.push(self.report(index, server));
            }
        }
        reports
    }

    fn report(&self, index: usize, server: &Server) -> ServerReport {
        let (status, error) = match &*lock(&server.state) {
            State::Ready { .. } => (ServerStatus::Ready, None),
            State::Failed(error) => (ServerStatus::Failed, Some(error.clone())),
            State::Stopped { error, .. } => (ServerStatus::Stopped, Some(error.clone())),
        };
        ServerReport {
            server: server.name.clone(),
            status,
            tools: self
                .tools
                .iter()
                .filter(|(_, tool)| tool.server == index)
                .map(|(name, _)| name.clone())
                .collect(),
            error,
        }
    }

    /// Calls the tool the model knows as `name`. Failures of the server become a failed
    /// outcome the model reads; nothing here ends the run.
    pub async fn call(&self, name: &str, arguments: serde_json::Value) -> McpCallOutcome {
        let Some(tool) = self.tools.get(name) else {
            return failure(
                format!("error: unknown MCP tool `{name}`"),
                serde_json::Value::Null,
            );
        };
        let server = &self.servers[tool.server];
        let details = serde_json::json!({"mcp_server": server.name, "mcp_tool": tool.original});
        let peer = match &*lock(&server.state) {
            State::Ready { peer, .. } => peer.clone(),
            State::Failed(error) | State::Stopped { error, .. } => {
                return failure(
                    format!(
                        "error: the MCP server `{}` is unavailable ({error}); its tools cannot be used in this run",
                        server.name
                    ),
                    details,
                );
            }
        };
        let arguments = match arguments {
            serde_json::Value::Object(map) => Some(map),
            serde_json::Value::Null => None,
            other => {
                return failure(
                    format!("error: the arguments must be a JSON object, got {other}"),
                    details,
                );
            }
        };
        let mut params = CallToolRequestParams::new(tool.original.clone());
        params.arguments = arguments;
        match tokio::time::timeout(server.call_timeout, peer.call_tool(params)).await {
            Ok(Ok(result)) => {
                let value = serde_json::to_value(&result).unwrap_or_default();
                let (content, success) = render_result(&value);
                McpCallOutcome {
                    content,
                    success,
                    details,
                }
            }
            Ok(Err(error)) => self.call_failed(server, &peer, &error, details),
            // Dropping the call sent `notifications/cancelled` to the server.
            Err(_) => failure(
                format!(
                    "error: the MCP server `{}` did not answer within {} s; the call was cancelled",
                    server.name,
                    server.call_timeout.as_secs()
                ),
                details,
            ),
        }
    }

    fn call_failed(
        &self,
        server: &Server,
        peer: &Peer<RoleClient>,
        error: &ServiceError,
        details: serde_json::Value,
    ) -> McpCallOutcome {
        let gone = matches!(error, ServiceError::TransportClosed) || peer.is_transport_closed();
        if !gone {
            return failure(
                format!("error: the MCP server `{}` answered: {error}", server.name),
                details,
            );
        }
        let message = format!("it stopped during the run ({error})");
        tracing::warn!(server = %server.name, %error, "MCP server stopped");
        let mut state = lock(&server.state);
        if matches!(*state, State::Ready { .. }) {
            *state = State::Stopped {
                error: message.clone(),
                reported: false,
            };
        }
        drop(state);
        server.process_group.kill();
        failure(
            format!(
                "error: the MCP server `{}` {message}; its tools cannot be used for the rest of this run",
                server.name
            ),
            details,
        )
    }

    /// Closes every connection and stops every server process (and what it started).
    pub async fn shutdown(&self) {
        let running: Vec<RunningService<RoleClient, ClientConfig>> = self
            .servers
            .iter()
            .filter_map(|server| match &mut *lock(&server.state) {
                State::Ready { running, .. } => running.take(),
                _ => None,
            })
            .collect();
        for service in running {
            let _ = tokio::time::timeout(Duration::from_secs(2), service.cancel()).await;
        }
        futures_util::future::join_all(
            self.servers
                .iter()
                .map(|server| server.process_group.stop(Duration::from_millis(500))),
        )
        .await;
    }
}

impl Drop for McpServers {
    /// A run cut short (wall-time limit, a panic) still leaves no server behind.
    fn drop(&mut self) {
        for server in &self.servers {
            server.process_group.kill();
        }
    }
}

/// Values from the MCP configuration that must never be shown: every header value (they
/// carry tokens) and the environment values whose names mark them as credentials.
pub fn config_secrets(config: &McpConfig, secret_env_vars: &[String]) -> Vec<String> {
    config
        .servers
        .values()
        .flat_map(|server| {
            let headers = server.headers.values().map(|value| {
                // `Bearer xyz`: the token alone, so it is caught wherever it shows up.
                value
                    .split_once(' ')
                    .map_or(value.as_str(), |(_, token)| token.trim())
                    .to_string()
            });
            let env = server
                .env
                .iter()
                .filter(|(name, _)| tools::is_secret_env_var(name, secret_env_vars))
                .map(|(_, value)| value.clone());
            headers.chain(env).collect::<Vec<_>>()
        })
        .collect()
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn failure(content: String, details: serde_json::Value) -> McpCallOutcome {
    McpCallOutcome {
        content,
        success: false,
        details,
    }
}

fn offered(spec: &ServerSpec, tool: &str) -> bool {
    spec.enabled_tools
        .as_ref()
        .is_none_or(|enabled| enabled.iter().any(|name| name == tool))
        && !spec.disabled_tools.iter().any(|name| name == tool)
}

fn mcp_tool(server_name: &str, index: usize, name: String, tool: &rmcp::model::Tool) -> McpTool {
    let description = tool
        .description
        .as_deref()
        .or(tool.title.as_deref())
        .unwrap_or("")
        .trim();
    let description = if description.is_empty() {
        format!("`{}` from the MCP server `{server_name}`.", tool.name)
    } else {
        format!("{description} (MCP server `{server_name}`)")
    };
    McpTool {
        spec: tools::ToolSpec {
            name,
            description,
            parameters: serde_json::Value::Object((*tool.input_schema).clone()),
        },
        read_only: tool
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.read_only_hint)
            == Some(true),
        server: index,
        original: tool.name.to_string(),
    }
}
