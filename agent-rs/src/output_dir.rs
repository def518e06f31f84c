//! The output folder a run leaves behind: `diff.patch`, `trajectory.jsonl`,
//! `result.json`, `agent.log`, `prompt.txt`, and for a resumed run `step.patch`.
//!
//! It must live outside the workspace: inside, the agent's own record would show up in
//! the diff and the tools could overwrite it. Files are written whole and renamed into
//! place, so a reader never sees half a `result.json`.

use std::path::{Path, PathBuf};

pub const DIFF_FILE: &str = "diff.patch";
pub const TRAJECTORY_FILE: &str = "trajectory.jsonl";
pub const RESULT_FILE: &str = "result.json";
pub const LOG_FILE: &str = "agent.log";
pub const PROMPT_FILE: &str = "prompt.txt";
/// A resumed run's own changes (`diff.patch` is then cumulative, from the task's base).
pub const STEP_DIFF_FILE: &str = "step.patch";

/// Why the output folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputDirError {
    #[error(
        "output folder `{output}` is inside the workspace `{workspace}`; choose a folder outside it (it would end up in the diff)"
    )]
    InsideWorkspace { output: PathBuf, workspace: PathBuf },
    #[error("cannot create output folder `{path}`: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A prepared output folder.
#[derive(Debug, Clone)]
pub struct OutputDir {
    path: PathBuf,
}

impl OutputDir {
    /// Creates `requested`, or a fresh folder under the system temp dir when `None`.
    /// Refuses a folder inside `workspace_root` (which must be canonical).
    pub fn prepare(
        requested: Option<&Path>,
        workspace_root: &Path,
    ) -> Result<Self, OutputDirError> {
        let path = match requested {
            Some(path) => {
                let create_error = |source| OutputDirError::Create {
                    path: path.to_path_buf(),
                    source,
                };
                // Checked before anything is created, so a refusal leaves nothing behind;
                // the folder created is the one checked.
                let ahead = resolve_ahead(path).map_err(create_error)?;
                if ahead.starts_with(workspace_root) {
                    return Err(OutputDirError::InsideWorkspace {
                        output: path.to_path_buf(),
                        workspace: workspace_root.to_path_buf(),
                    });
                }
                std::fs::create_dir_all(&ahead).map_err(create_error)?;
                ahead
            }
            None => tempfile::Builder::new()
                .prefix("agent-rs-run-")
                .tempdir()
                .map_err(|source| OutputDirError::Create {
                    path: std::env::temp_dir(),
                    source,
                })?
                .keep(),
        };
        let canonical = path
            .canonicalize()
            .map_err(|source| OutputDirError::Create {
                path: path.clone(),
                source,
            })?;
        if canonical.starts_with(workspace_root) {
            return Err(OutputDirError::InsideWorkspace {
                output: path,
                workspace: workspace_root.to_path_buf(),
            });
        }
        Ok(Self { path: canonical })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes a file whole: to a temporary name, then renamed into place.
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<(), OutputDirError> {
        let target = self.file(name);
        let temp = self.file(&format!(".{name}.tmp"));
        std::fs::write(&temp, contents)
            .and_then(|()| std::fs::rename(&temp, &target))
            .map_err(|source| OutputDirError::Write {
                path: target,
                source,
            })
    }
}

/// Where `path` would be once created: `..` folded, then its deepest existing ancestor
/// with every symlink resolved and the rest of its names (which cannot be symlinks, as
/// they do not exist yet) as written.
fn resolve_ahead(path: &Path) -> std::io::Result<PathBuf> {
    let mut folded = PathBuf::new();
    for component in std::path::absolute(path)?.components() {
        match component {
            std::path::Component::ParentDir => {
                folded.pop();
            }
            std::path::Component::CurDir => {}
            other => folded.push(other.as_os_str()),
        }
    }
    let mut existing = folded.as_path();
    let mut rest = Vec::new();
    while existing.symlink_metadata().is_err() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        rest.push(name.to_os_string());
        existing = parent;
    }
    let mut resolved = existing.canonicalize()?;
    resolved.extend(rest.into_iter().rev());
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_inside_workspace_is_refused() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let err = OutputDir::prepare(Some(&root.join("out")), &root).unwrap_err();
        assert!(
            matches!(err, OutputDirError::InsideWorkspace { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_refused_output_folder_is_not_created() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let holder = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&root, holder.path().join("ws-link")).unwrap();
        for requested in [
            root.join("out/deeper"),
            holder.path().join("ws-link/out"),
            holder.path().join("missing/../ws-link/out"),
        ] {
            let err = OutputDir::prepare(Some(&requested), &root).unwrap_err();
            assert!(
                matches!(err, OutputDirError::InsideWorkspace { .. }),
                "{err}"
            );
        }
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            0,
            "something was created"
        );
        assert!(!holder.path().join("missing").exists());
    }

    #[test]
    fn default_output_is_a_fresh_folder_outside_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let a = OutputDir::prepare(None, &root).unwrap();
        let b = OutputDir::prepare(None, &root).unwrap();
        assert_ne!(a.path(), b.path());
        a.write(RESULT_FILE, b"{}").unwrap();
        assert_eq!(std::fs::read(a.file(RESULT_FILE)).unwrap(), b"{}");
        std::fs::remove_dir_all(a.path()).unwrap();
        std::fs::remove_dir_all(b.path()).unwrap();
    }
}
