//! Placeholder: replaced by the real `list_directory` tool.

use async_trait::async_trait;

use crate::error::ToolError;
use crate::tool::{Tool, ToolContext, ToolOutput};

#[derive(Debug, Default)]
pub struct ListDirectoryTool;

#[async_trait]
impl Tool for ListDirectoryTool {
    fn name(&self) -> &'static str {
        "list_directory"
    }
    fn description(&self) -> &'static str {
        "not yet built"
    }
    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }
    fn mutates(&self) -> bool {
        true
    }
    async fn call(
        &self,
        _ctx: &ToolContext,
        _args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        Err(ToolError::Fatal("not yet built".into()))
    }
}
