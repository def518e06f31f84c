//! The agent: configuration, the tool-calling loop and its command-line entry points.
//!
//! The binary (`main.rs`) is a thin shell over this library: `run_command` wires a local
//! run together (workspace, output folder, model client, tools, loop, diff), `run` holds
//! the loop itself, `events` the typed record every front end shares, and `job` runs a
//! task for the orchestrator (workspace and outputs over presigned URLs).

pub mod check;
pub mod config;
pub mod events;
pub mod exit;
pub mod git_hazards;
pub mod install;
pub mod job;
pub mod logging;
pub mod mcp;
pub mod model;
pub mod orphans;
pub mod output_dir;
pub mod output_text;
pub mod process_usage;
pub mod progress;
pub mod prompt;
pub mod result;
pub mod resume;
pub mod run;
pub mod run_command;
pub mod sandbox_server;
pub mod setup;
pub mod sink;
pub mod tool_cli;
pub mod workspace_diff;

/// The Tokio runtime the binary runs on: one thread. The loop is one conversation that
/// mostly waits (on the model, on a command); its concurrency (reads run together, a
/// command's output drained while it runs) is that of async tasks, and the file tools'
/// blocking work goes to Tokio's blocking pool anyway. Worker threads would only add
/// cross-thread wake-ups to every turn, and each a malloc arena and a stack to the
/// process's memory (one per core by default: dozens on a large host).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
