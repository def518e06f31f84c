//! The runner of a process that launches no agents: an api-only process beside separate
//! worker processes. Opening the configured runner there would tie the API's start to a
//! backend it never calls (a container engine's socket, a cluster's credentials); this
//! one answers every call with an error that says which process was asked, so a call that
//! should have gone to a worker shows up at once instead of acting on the wrong host.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use super::{LaunchSpec, RunHandle, RunInfo, RunStatus, Runner, RunnerError, RunnerEvent};

/// Refuses every call: see the module's documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRunner;

fn refused(doing: &str) -> RunnerError {
    RunnerError::failed(
        doing,
        "this process runs no agents (role api): the worker processes do",
    )
}

#[async_trait]
impl Runner for NoRunner {
    async fn launch(&self, spec: LaunchSpec) -> Result<RunHandle, RunnerError> {
        Err(refused(&format!("launch run `{}`", spec.name)))
    }

    async fn status(&self, handle: &RunHandle) -> Result<RunStatus, RunnerError> {
        Err(refused(&format!("read the status of run `{}`", handle.0)))
    }

    async fn watch(
        &self,
        handle: &RunHandle,
        _skip: u64,
    ) -> Result<BoxStream<'static, RunnerEvent>, RunnerError> {
        Err(refused(&format!("watch run `{}`", handle.0)))
    }

    async fn detach(&self, handle: &RunHandle) -> Result<(), RunnerError> {
        Err(refused(&format!("detach from run `{}`", handle.0)))
    }

    async fn cancel(&self, handle: &RunHandle) -> Result<(), RunnerError> {
        Err(refused(&format!("cancel run `{}`", handle.0)))
    }

    async fn list(
        &self,
        _selector: &BTreeMap<String, String>,
    ) -> Result<Vec<RunInfo>, RunnerError> {
        Err(refused("list runs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_is_refused_naming_the_role() {
        let handle = RunHandle("task-1-a1".into());
        let errors = [
            NoRunner.status(&handle).await.unwrap_err(),
            NoRunner.watch(&handle, 0).await.err().unwrap(),
            NoRunner.detach(&handle).await.unwrap_err(),
            NoRunner.cancel(&handle).await.unwrap_err(),
            NoRunner.list(&BTreeMap::new()).await.unwrap_err(),
        ];
        for err in errors {
            assert!(!err.is_transient(), "{err}");
            assert!(
                err.to_string().contains("runs no agents (role api)"),
                "{err}"
            );
        }
    }
}
