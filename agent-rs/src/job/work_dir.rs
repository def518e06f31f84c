//! Where `agent-rs job` unpacks the workspace: `AGENT_WORK_DIR` when given (it must be
//! empty or absent, so a job never mixes its archive with what was there), else a
//! temporary folder removed when the job ends.

use std::path::{Path, PathBuf};

/// Where the workspace is unpacked: the folder asked for, or a temporary one removed
/// when the job ends.
pub(super) enum WorkDir {
    Given(PathBuf),
    Temporary(tempfile::TempDir),
}

impl WorkDir {
    pub(super) fn prepare(requested: Option<&Path>) -> Result<Self, String> {
        let Some(dir) = requested else {
            return tempfile::Builder::new()
                .prefix("agent-rs-job-ws-")
                .tempdir()
                .map(Self::Temporary)
                .map_err(|err| format!("cannot create a temporary work folder: {err}"));
        };
        let shown = dir.display();
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(format!(
                        "AGENT_WORK_DIR `{shown}` is not empty; give an empty or absent folder"
                    ));
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)
                    .map_err(|err| format!("AGENT_WORK_DIR `{shown}` cannot be created: {err}"))?;
            }
            Err(err) => {
                return Err(format!(
                    "AGENT_WORK_DIR `{shown}` is not a usable folder: {err}"
                ));
            }
        }
        Ok(Self::Given(dir.to_path_buf()))
    }

    pub(super) fn path(&self) -> &Path {
        match self {
            Self::Given(dir) => dir,
            Self::Temporary(dir) => dir.path(),
        }
    }
}
