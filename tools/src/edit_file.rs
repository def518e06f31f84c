//! Placeholder: replaced by the real `edit_file_content` tool.

use async_trait::async_trait;

use crate::error::ToolError;
use crate::tool::{Tool, ToolContext, ToolOutput};

#[derive(Debug, Default)]
pub struct EditFileTool;

#[async_trait]
impl Tool for EditFileTool {
    fn name(&self) -> &'static str {
        "edit_file_content"
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
