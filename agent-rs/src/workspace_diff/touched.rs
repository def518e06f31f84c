//! Files the agent's own file tools changed where the snapshot does not look: a file a
//! `.gitignore` hides, one inside a repository nested in the workspace and ignored there.
//! The tools say which file they are about to change ([`tools::WriteObserver`]); its
//! content is recorded then, before the first change, and at the end every such file
//! the main diff did not cover gets its own section. So an edit the agent made on
//! purpose is never lost from the patch, while what commands leave in ignored folders
//! (build outputs, caches) stays out as before.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::recorded::{ContentStore, Recorded, patch_path, write_change};
use super::{DiffError, LeftOut, SnapshotLimits, WorkspaceDiff};

/// What a file was before the tools first changed it.
#[derive(Debug)]
enum Original {
    Missing,
    Found(Recorded),
    Unreadable(String),
}

/// The originals of the files the tools changed, by path relative to the root.
#[derive(Debug)]
pub(super) struct TouchedFiles {
    root: PathBuf,
    state: Mutex<(BTreeMap<PathBuf, Original>, ContentStore)>,
}

impl TouchedFiles {
    pub fn new(root: &Path, limits: SnapshotLimits) -> Self {
        Self {
            root: root.to_path_buf(),
            state: Mutex::new((BTreeMap::new(), ContentStore::new(limits))),
        }
    }

    /// Records `path` (absolute, inside the root) as it is now, unless it was already.
    pub fn record(&self, path: &Path) {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return;
        };
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let (originals, store) = &mut *state;
        if relative.as_os_str().is_empty() || originals.contains_key(relative) {
            return;
        }
        let original = match path.symlink_metadata() {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Original::Missing,
            Err(error) => Original::Unreadable(error.to_string()),
            Ok(metadata) if metadata.is_dir() => return,
            Ok(metadata) => match store.record(path, &metadata) {
                Ok(Some(recorded)) => Original::Found(recorded),
                Ok(None) => Original::Missing,
                Err(error) => Original::Unreadable(error.to_string()),
            },
        };
        originals.insert(relative.to_path_buf(), original);
    }

    /// Appends a section for every recorded file `covered` does not hold.
    pub fn diff_uncovered(
        &self,
        diff: &mut WorkspaceDiff,
        covered: &BTreeSet<PathBuf>,
    ) -> Result<(), DiffError> {
        let Ok(state) = self.state.lock() else {
            return Ok(());
        };
        let (originals, store) = &*state;
        for (relative, original) in originals {
            if covered.contains(relative) {
                continue;
            }
            let shown = relative.to_string_lossy();
            let old = match original {
                Original::Missing => None,
                Original::Found(recorded) => Some(recorded),
                Original::Unreadable(reason) => {
                    diff.left_out.push(LeftOut::new(
                        &shown,
                        &format!("could not be read before the agent changed it: {reason}"),
                    ));
                    continue;
                }
            };
            let path = self.root.join(relative);
            let new = match path.symlink_metadata() {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
                Err(error) => {
                    return Err(DiffError::Io {
                        path,
                        source: error,
                    });
                }
                Ok(metadata) if metadata.is_dir() => None,
                Ok(metadata) => {
                    store
                        .current(&path, &metadata)
                        .map_err(|source| DiffError::Io {
                            path: path.clone(),
                            source,
                        })?
                }
            };
            write_change(diff, &patch_path(relative), old, new.as_ref())?;
        }
        Ok(())
    }
}
