//! The plain-folder mode: a workspace that is not inside a git work tree. The starting
//! state is recorded file by file ([`recorded`](super::recorded): bytes in memory while
//! small, copied aside on disk when large, the blob id alone past every bound), and the
//! patch is written by `patch_writer`.
//!
//! The walk follows git's view of a folder: `.gitignore` files are honoured (even with no
//! repository), hidden files are included, `.git` folders at any depth are skipped, empty
//! directories do not exist. Symlinks are not followed; each is recorded as a symlink
//! (mode 120000, its target as content), exactly as git stores one. What the walk cannot
//! read (a directory past the system's path length, a file without permission) is listed
//! as left out, never a reason to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;

use super::recorded::{ContentStore, Recorded, patch_path, write_change};
use super::{DiffError, LeftOut, SnapshotLimits, WorkspaceDiff};

/// The starting state of a plain folder.
#[derive(Debug)]
pub(super) struct PlainSnapshot {
    root: PathBuf,
    files: BTreeMap<PathBuf, Recorded>,
    store: ContentStore,
    /// What could not be recorded at the start, by relative path.
    unreadable: BTreeMap<PathBuf, String>,
}

impl PlainSnapshot {
    pub(super) fn capture(root: &Path, limits: SnapshotLimits) -> Result<Self, DiffError> {
        let mut store = ContentStore::new(limits);
        let (listed, mut unreadable) = list_files(root, None);
        let mut files = BTreeMap::new();
        for (relative, metadata) in listed {
            match store.record(&root.join(&relative), &metadata) {
                Ok(Some(recorded)) => {
                    files.insert(relative, recorded);
                }
                Ok(None) => {}
                Err(error) => {
                    unreadable.insert(relative, error.to_string());
                }
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            files,
            store,
            unreadable,
        })
    }

    /// Whether the start recorded a file at `relative`.
    pub(super) fn holds(&self, relative: &Path) -> bool {
        self.files.contains_key(relative)
    }

    /// Appends the changes to `diff`, paths prefixed with `shown_as` (the root's place in
    /// the workspace when it is a nested repository); `covered` receives every path this
    /// diff looked at, so files changed outside its view can be added.
    pub(super) fn diff_into(
        &self,
        diff: &mut WorkspaceDiff,
        shown_as: &Path,
        covered: &mut BTreeSet<PathBuf>,
    ) -> Result<(), DiffError> {
        let (mut listed, mut unreadable) = list_files(&self.root, self.store.spill_dir());
        // A starting file that the walk no longer lists but that is still there was only
        // hidden by a `.gitignore` written since: it is unchanged, not deleted.
        for relative in self.files.keys() {
            if !listed.contains_key(relative)
                && let Ok(metadata) = self.root.join(relative).symlink_metadata()
                && !metadata.is_dir()
            {
                listed.insert(relative.clone(), metadata);
            }
        }
        let paths: BTreeSet<PathBuf> = self.files.keys().chain(listed.keys()).cloned().collect();
        for relative in &paths {
            // Nothing under what could not be read at the start can be diffed.
            if self
                .unreadable
                .keys()
                .any(|start| relative.starts_with(start))
            {
                continue;
            }
            let old = self.files.get(relative);
            let new = match listed.get(relative) {
                Some(metadata) => match self.current(relative, metadata, old) {
                    Ok(new) => new,
                    Err(error) => {
                        unreadable.insert(relative.clone(), error.to_string());
                        continue;
                    }
                },
                None => None,
            };
            write_change(
                diff,
                &patch_path(&shown_as.join(relative)),
                old,
                new.as_ref(),
            )?;
        }
        for (relative, reason) in self.unreadable.iter().chain(&unreadable) {
            let shown = shown_as.join(relative);
            diff.left_out.push(LeftOut::new(
                &shown.to_string_lossy(),
                &format!("could not be read, so its changes cannot be seen: {reason}"),
            ));
        }
        covered.extend(paths.iter().map(|path| shown_as.join(path)));
        Ok(())
    }

    /// The current state of a listed file, reusing the recorded one when size and mtime
    /// say a file recorded by id alone is untouched (as git's stat cache does).
    fn current(
        &self,
        relative: &Path,
        metadata: &Metadata,
        old: Option<&Recorded>,
    ) -> std::io::Result<Option<Recorded>> {
        if let Some(old) = old
            && matches!(old.kept, super::recorded::Kept::Nowhere)
            && old.mode == super::recorded::mode_of(metadata)
            && old.size == metadata.len()
            && old.modified.is_some()
            && old.modified == metadata.modified().ok()
        {
            return Ok(Some(Recorded {
                kept: super::recorded::Kept::Nowhere,
                ..*old
            }));
        }
        self.store.current(&self.root.join(relative), metadata)
    }
}

/// Every file and symlink under `root` that git would see, by relative path, and what
/// could not be read (with why), leaving out `skip` (the spill folder).
fn list_files(
    root: &Path,
    skip: Option<&Path>,
) -> (BTreeMap<PathBuf, Metadata>, BTreeMap<PathBuf, String>) {
    let skip = skip.map(Path::to_path_buf);
    let walk = WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |entry| {
            entry.file_name() != ".git" && skip.as_deref() != Some(entry.path())
        })
        .build();
    let mut files = BTreeMap::new();
    let mut unreadable = BTreeMap::new();
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                let path = error_path(&error).unwrap_or_else(|| root.to_path_buf());
                let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                unreadable.insert(relative, walk_reason(&error));
                continue;
            }
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if !(file_type.is_file() || file_type.is_symlink()) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        match entry.path().symlink_metadata() {
            Ok(metadata) => {
                files.insert(relative.to_path_buf(), metadata);
            }
            Err(error) => {
                unreadable.insert(relative.to_path_buf(), error.to_string());
            }
        }
    }
    (files, unreadable)
}

/// The path an error of the walk is about, when it names one.
fn error_path(error: &ignore::Error) -> Option<PathBuf> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

/// The walk error without the path it names (the path is shown apart, shortened).
fn walk_reason(error: &ignore::Error) -> String {
    match error {
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => walk_reason(err),
        ignore::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
