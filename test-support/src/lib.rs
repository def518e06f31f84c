//! What the workspace's tests share, so each crate's tests stop carrying a copy: the
//! real binaries (built once per test process), the Server-Sent Events reader, zip, git
//! and tree helpers, process checks, the `api` binary started over a config file, the
//! loopback services of `scripts/services` (read from `target/services.env`), and the
//! private instances and fault proxy a test stops and starts.
//!
//! A dev-dependency only. Its helpers panic on anything unexpected: in a test, a panic
//! with the cause is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod binaries;
pub mod cluster;
#[cfg(feature = "kube")]
pub mod fake_kube;
pub mod files;
pub mod model;
pub mod private;
pub mod procs;
pub mod proxy;
pub mod services;
pub mod sse;

pub use api::{Api, Home, TOKEN, WAIT, eventually};
pub use binaries::{agent_binary, workspace_binary};
pub use files::{
    CALC_PY, apply_to_original, copy_tree, git, git_apply, git_repo, tree_contents, zip_of,
};
pub use model::{agent_runs, fix_add_steps, scripted_model, shell_step};
pub use procs::{assert_no_process_left, free_port, processes_of_task};
pub use sse::{SseEvent, SseReader};
