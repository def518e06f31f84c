//! `WorkspaceSnapshot` round trips: every patch is applied with the real `git apply` to
//! an untouched copy of the starting state and must reproduce the workspace exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod git_mode;
mod plain_mode;
mod support;
