//! The agent's tools, and the walls around them.
//!
//! This crate knows nothing about language models: it exposes a [`Tool`] trait, a
//! [`ToolRegistry`] that turns a tool name plus JSON arguments into a [`ToolOutput`], and
//! the built-in tools the agent loop offers to a model. Every path a tool touches goes
//! through the [`WorkspaceJail`], so a tool call can never read or write outside the
//! workspace root, whatever the model asks for.
//!
//! Errors come in two kinds (see [`ToolError::is_fatal`]): most are told to the model so
//! it can correct itself, and the run goes on; a fatal one ends the run.

pub mod apply_patch;
pub mod call_api;
pub mod config;
pub mod edit_file;
pub mod egress;
pub mod error;
pub mod http_client;
pub mod jail;
pub mod jail_names;
pub mod list_directory;
pub mod net_guard;
pub mod output_cap;
pub mod read_file;
pub mod redact;
pub mod registry;
pub mod sandbox;
pub mod search_code;
pub mod shell;
pub mod text_file;
pub mod tool;
pub mod web_search;

pub use config::ToolsConfig;
pub use error::ToolError;
pub use jail::{JailError, WorkspaceJail};
pub use redact::{SecretRedactor, is_secret_env_var};
pub use registry::ToolRegistry;
pub use sandbox::{
    EgressProxy, GitProtection, NetworkAccess, NetworkChoice, Sandbox, SandboxConfig, SandboxMode,
    SandboxSummary,
};
pub use tool::{Tool, ToolContext, ToolOutput, ToolSpec, WriteObserver};
