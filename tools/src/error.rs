//! The error a tool call returns.
//!
//! Borrowed from codex: a tool error either goes back to the model as the call's result
//! (bad arguments, missing file, a patch that does not apply) so the model can try
//! again, or it is fatal and ends the run (the tool itself is broken). Almost everything
//! is the first kind; the loop asks [`ToolError::is_fatal`] to tell them apart.

use std::path::PathBuf;

use crate::jail::JailError;

/// Why a tool call did not produce a normal result.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No tool has this name.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),

    /// The arguments did not match the tool's schema.
    #[error("invalid arguments for `{tool}`: {message}")]
    InvalidArguments { tool: &'static str, message: String },

    /// A path argument points outside the workspace.
    #[error(transparent)]
    Jail(#[from] JailError),

    /// A file-system operation failed; the path says where.
    #[error("{action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The call was understood but cannot be carried out (no match for an edit, a patch
    /// that does not apply, a refused URL...). The message is written for the model.
    #[error("{0}")]
    Rejected(String),

    /// The tool cannot work at all; the run should stop.
    #[error("fatal tool failure: {0}")]
    Fatal(String),
}

impl ToolError {
    /// Whether the run must stop, rather than show the error to the model.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ToolError::Fatal(_))
    }

    /// A [`ToolError::Rejected`] from anything printable.
    pub fn rejected(message: impl Into<String>) -> Self {
        ToolError::Rejected(message.into())
    }

    /// A [`ToolError::Io`] with the action and path that failed.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ToolError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
