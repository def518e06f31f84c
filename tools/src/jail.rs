//! The workspace jail: every path a tool touches resolves inside one root directory.
//!
//! A model can ask for `../../etc/passwd`, `/etc/passwd`, or `link/passwd` where `link`
//! is a symlink to `/etc`. All three are refused here, before any tool opens a file. The
//! check is lexical first (`..` and absolute paths), then physical: the deepest part of the
//! path that exists is canonicalized (following every symlink) and must still be inside
//! the root. The parts that do not exist yet cannot be symlinks, so a path that passes
//! can be created safely. Symlinks that stay inside the workspace are allowed.
//!
//! Git's own directory is out of bounds too, at any depth and under every spelling git
//! treats as `.git` (see [`crate::jail_names`]): `.git/config` can name a command git
//! runs on the next `git status` (`core.fsmonitor`), and hooks run on commit. The tools
//! change git state only through git commands. A name the model copied with U+FFFD (a
//! name that is not UTF-8, as every tool shows it) finds its file.
//!
//! The jail guards the tools' own file access. It is not a sandbox for the shell tool:
//! a command can do anything its process may; the container is that sandbox.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::jail_names::{LossyMatch, escaped_name, find_lossy, has_git_dir_component};

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("the path is empty")]
    EmptyPath,

    #[error("the path contains a NUL byte")]
    NulByte,

    #[error(
        "path `{requested}` is outside the workspace; use a path relative to the workspace root"
    )]
    Escapes { requested: String },

    #[error("path `{requested}` goes through a symbolic link that leads outside the workspace")]
    SymlinkEscapes { requested: String },

    #[error("path `{requested}` goes through a symbolic link whose target does not exist")]
    DanglingSymlink { requested: String },

    #[error(
        "path `{requested}` is inside a `.git` directory (git's own files: its config and hooks \
         can run commands); the file tools never read or change it. Use git commands through \
         run_shell_command instead (git config, git commit, git checkout...)"
    )]
    GitDir { requested: String },

    #[error(
        "path `{requested}`: {count} entries of `{dir}` have names that are not UTF-8 and \
         look alike as shown (`{name}`). Name the one you mean with its bytes that are not \
         UTF-8 written as \\xHH, exactly as one of these: {spellings}"
    )]
    AmbiguousName {
        requested: String,
        dir: String,
        name: String,
        count: usize,
        /// The look-alikes' names, their bytes that are not UTF-8 written `\xHH`.
        spellings: String,
    },

    #[error("workspace root `{root}` is not a usable directory: {source}")]
    BadRoot {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot inspect `{requested}`: {source}")]
    Io {
        requested: String,
        #[source]
        source: std::io::Error,
    },
}

/// A workspace root, canonicalized once, that resolves paths given by a model.
#[derive(Debug, Clone)]
pub struct WorkspaceJail {
    root: Arc<PathBuf>,
}

impl WorkspaceJail {
    /// Opens a jail on an existing directory.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, JailError> {
        let root = root.as_ref();
        let canonical = root.canonicalize().map_err(|source| JailError::BadRoot {
            root: root.to_path_buf(),
            source,
        })?;
        if !canonical.is_dir() {
            return Err(JailError::BadRoot {
                root: root.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(Self {
            root: Arc::new(canonical),
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a path given by the model to a real path inside the workspace.
    ///
    /// Relative paths are taken from the root; absolute paths are accepted only when they
    /// already point inside it. The result need not exist, but its parent directories
    /// that do exist are real (symlinks resolved).
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, JailError> {
        if requested.is_empty() {
            return Err(JailError::EmptyPath);
        }
        if requested.contains('\0') {
            return Err(JailError::NulByte);
        }
        let escapes = || JailError::Escapes {
            requested: requested.to_string(),
        };

        let requested_path = Path::new(requested);
        let joined = if requested_path.is_absolute() {
            requested_path.to_path_buf()
        } else {
            self.root.join(requested_path)
        };
        let normalized = normalize_lexically(&joined).ok_or_else(escapes)?;
        let relative = normalized
            .strip_prefix(self.root.as_path())
            .map_err(|_| escapes())?;
        let git_dir = || JailError::GitDir {
            requested: requested.to_string(),
        };
        if has_git_dir_component(relative) {
            return Err(git_dir());
        }
        if relative.as_os_str().is_empty() {
            // The root itself (a command's default folder): canonical since `new`.
            return Ok(self.root.as_path().to_path_buf());
        }

        // Walk down from the root while the path exists; the rest is to be created.
        let mut existing = self.root.as_path().to_path_buf();
        let mut missing: Vec<OsString> = Vec::new();
        for component in relative.components() {
            let Component::Normal(name) = component else {
                return Err(escapes());
            };
            if !missing.is_empty() {
                missing.push(name.to_os_string());
                continue;
            }
            let next = existing.join(name);
            match std::fs::symlink_metadata(&next) {
                Ok(_) => existing = next,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    match self.lossy_entry(&existing, name, requested)? {
                        Some(real_name) => existing.push(real_name),
                        None => missing.push(name.to_os_string()),
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
                    // `file.txt/child`: report it the way opening it would.
                    return Err(JailError::Io {
                        requested: requested.to_string(),
                        source: err,
                    });
                }
                Err(source) => {
                    return Err(JailError::Io {
                        requested: requested.to_string(),
                        source,
                    });
                }
            }
        }

        let real = match existing.canonicalize() {
            Ok(real) => real,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(JailError::DanglingSymlink {
                    requested: requested.to_string(),
                });
            }
            Err(source) => {
                return Err(JailError::Io {
                    requested: requested.to_string(),
                    source,
                });
            }
        };
        if !real.starts_with(self.root.as_path()) {
            return Err(JailError::SymlinkEscapes {
                requested: requested.to_string(),
            });
        }
        let mut resolved = real;
        resolved.extend(missing);
        // A symlink inside the workspace may lead into a `.git` the request did not name.
        if resolved
            .strip_prefix(self.root.as_path())
            .is_ok_and(has_git_dir_component)
        {
            return Err(git_dir());
        }
        Ok(resolved)
    }

    /// The real name of the one entry of `dir` shown as `name` when `name` holds U+FFFD
    /// or `\xHH` escapes and does not exist as written.
    fn lossy_entry(
        &self,
        dir: &Path,
        name: &std::ffi::OsStr,
        requested: &str,
    ) -> Result<Option<OsString>, JailError> {
        let found = find_lossy(dir, name).map_err(|source| JailError::Io {
            requested: requested.to_string(),
            source,
        })?;
        match found {
            LossyMatch::None => Ok(None),
            LossyMatch::One(real_name) => Ok(Some(real_name)),
            LossyMatch::Several(names) => Err(JailError::AmbiguousName {
                requested: requested.to_string(),
                dir: self.display(dir),
                name: name.to_string_lossy().into_owned(),
                count: names.len(),
                spellings: names
                    .iter()
                    .map(|name| format!("`{}`", escaped_name(name)))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// How a resolved path is shown to the model: relative to the root, `/`-separated,
    /// `.` for the root itself.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(self.root.as_path()) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }
}

/// Removes `.` and folds `..` without touching the file system. `None` when `..` climbs
/// above the file-system root.
fn normalize_lexically(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => out.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
        }
    }
    Some(out)
}

#[cfg(test)]
#[path = "jail_tests.rs"]
mod tests;
