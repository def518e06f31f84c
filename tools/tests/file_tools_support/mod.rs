//! Shared setup for the file-tool tests: a workspace with a directory outside it that
//! holds a secret file, and helpers to call the tools and inspect refusals.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use tools::edit_file::EditFileTool;
use tools::read_file::ReadFileTool;
use tools::{Tool, ToolContext, ToolError, ToolOutput, ToolsConfig, WorkspaceJail};

pub const SECRET: &str = "top secret\n";

pub struct Workspace {
    pub root: tempfile::TempDir,
    pub outside: tempfile::TempDir,
    pub ctx: ToolContext,
}

pub fn workspace_with(config: ToolsConfig) -> Workspace {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), SECRET).unwrap();
    let ctx = ToolContext::new(WorkspaceJail::new(root.path()).unwrap(), Arc::new(config));
    Workspace { root, outside, ctx }
}

pub fn workspace() -> Workspace {
    workspace_with(ToolsConfig::default())
}

impl Workspace {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn contents(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// Asserts the directory outside the workspace holds only its untouched secret.
    pub fn outside_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(self.outside.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec!["secret.txt"], "something was created outside");
        let secret = std::fs::read_to_string(self.outside.path().join("secret.txt")).unwrap();
        assert_eq!(secret, SECRET);
    }

    pub async fn read(&self, args: serde_json::Value) -> Result<ToolOutput, ToolError> {
        ReadFileTool.call(&self.ctx, args).await
    }

    pub async fn edit(&self, args: serde_json::Value) -> Result<ToolOutput, ToolError> {
        EditFileTool.call(&self.ctx, args).await
    }
}

pub fn rejected(result: Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::Rejected(message)) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub fn invalid(result: Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(err @ ToolError::InvalidArguments { .. }) => err.to_string(),
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}
