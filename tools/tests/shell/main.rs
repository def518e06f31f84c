//! `run_shell_command` against real bash processes, one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod arguments;
mod directories;
mod lifecycle;
mod sandbox;
mod sandboxed;
mod served;
mod streams;
mod support;
