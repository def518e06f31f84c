//! Workspace preparation: the task's code, packed into a tarball in the blob store.
//!
//! The code is cloned (GIT) or unzipped from the uploaded blob (ZIP) into a scratch
//! folder, packed, and uploaded as `tasks/{id}/workspace.tar.gz`, the one thing the agent
//! downloads. The scratch folder is removed whatever happens. The blocking steps (libgit2,
//! zip, tar) run on the blocking pool.

use std::path::PathBuf;
use std::time::Duration;

use super::launch::workspace_key;
use crate::blob::BlobError;
use crate::config::WorkspaceConfig;
use crate::services::Services;
use crate::task::{InputSource, Task};
use crate::workspace::{
    CloneOptions, GitUrlPolicy, PackStats, WorkspaceError, clone_git, extract_zip, pack_tarball,
};

/// Why the code could not be made ready; the message becomes the task's failure message.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("the uploaded zip could not be read back: {0}")]
    Upload(#[source] BlobError),
    #[error("the workspace tarball could not be stored: {0}")]
    Store(#[source] BlobError),
    #[error("cannot create a scratch folder under {}: {source}", path.display())]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("workspace preparation stopped unexpectedly: {0}")]
    Crashed(String),
    #[error("the server's workspace settings are invalid: {0}")]
    Config(String),
}

impl PrepareError {
    /// Whether trying again later may succeed: the blob store could not be reached.
    pub fn is_transient(&self) -> bool {
        match self {
            PrepareError::Upload(err) | PrepareError::Store(err) => err.is_transient(),
            _ => false,
        }
    }
}

pub(crate) fn clone_options(config: &WorkspaceConfig) -> Result<CloneOptions, PrepareError> {
    Ok(CloneOptions {
        policy: GitUrlPolicy::from_config(config)
            .map_err(|err| PrepareError::Config(err.to_string()))?,
        max_bytes: config.max_bytes,
        max_files: config.max_files,
        max_duration: Duration::from_secs(config.clone_timeout_secs),
        idle_timeout: Duration::from_secs(config.clone_idle_timeout_secs.max(1)),
    })
}

/// Prepares and uploads `task`'s workspace.
pub async fn prepare_workspace(
    services: &Services,
    task: &Task,
) -> Result<PackStats, PrepareError> {
    let scratch_root = services.config.scratch_dir();
    let scratch_error = |source| PrepareError::Scratch {
        path: scratch_root.clone(),
        source,
    };
    tokio::fs::create_dir_all(&scratch_root)
        .await
        .map_err(scratch_error)?;
    let scratch = tempfile::Builder::new()
        .prefix(&format!("{}-", task.id))
        .tempdir_in(&scratch_root)
        .map_err(scratch_error)?;
    let code = scratch.path().join("code");
    let workspace = &services.config.workspace;
    match &task.input {
        InputSource::Git { git_url, git_ref } => {
            let (url, git_ref, dest) = (git_url.clone(), git_ref.clone(), code.clone());
            let opts = clone_options(workspace)?;
            blocking(move || clone_git(&url, git_ref.as_deref(), &dest, &opts)).await?;
        }
        InputSource::Zip { zip_key, .. } => {
            let zip = scratch.path().join("input.zip");
            services
                .blobs
                .get_file(zip_key, &zip)
                .await
                .map_err(PrepareError::Upload)?;
            let (dest, opts) = (code.clone(), workspace.extract_options());
            blocking(move || extract_zip(&zip, &dest, &opts)).await?;
        }
    }
    let tarball = scratch.path().join("workspace.tar.gz");
    let packed = {
        let tarball = tarball.clone();
        blocking(move || pack_tarball(&code, &tarball)).await?
    };
    services
        .blobs
        .put_file(&workspace_key(task.id), &tarball)
        .await
        .map_err(PrepareError::Store)?;
    tracing::info!(task_id = %task.id, files = packed.files, bytes = packed.content_bytes, "workspace prepared");
    Ok(packed)
}

async fn blocking<T: Send + 'static>(
    step: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Result<T, PrepareError> {
    match tokio::task::spawn_blocking(step).await {
        Ok(result) => result.map_err(PrepareError::from),
        Err(err) => Err(PrepareError::Crashed(err.to_string())),
    }
}
