//! The agent: configuration, the tool-calling loop and its command-line entry points.

pub mod config;
pub mod exit;
pub mod model;
pub mod tool_cli;
pub mod workspace_diff;

/// The Tokio runtime the binary runs on: multi-threaded, because tool calls that only
/// read run concurrently and a shell command's output is drained while it runs.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
