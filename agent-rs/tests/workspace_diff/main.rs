//! `WorkspaceSnapshot` round trips: every patch is applied with the real `git apply` to
//! an untouched copy of the starting state and must reproduce the workspace exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod git_mode;
mod plain_mode;
mod support;

/// The agent loop keeps the snapshot across `.await`s of a multi-threaded runtime.
#[test]
fn snapshot_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<agent_rs::workspace_diff::WorkspaceSnapshot>();
}
