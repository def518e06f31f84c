//! Workspace preparation: the task's code, packed into a tarball in the blob store.

use crate::services::Services;
use crate::task::Task;

/// Why the code could not be made ready; the message is the task's failure message.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("workspace preparation is not available yet")]
    Unavailable,
}

pub async fn prepare_workspace(_services: &Services, _task: &Task) -> Result<(), PrepareError> {
    Err(PrepareError::Unavailable)
}
