//! Placeholder: replaced by the real `web_search_doc_and_reference` tool.

use async_trait::async_trait;

use crate::error::ToolError;
use crate::tool::{Tool, ToolContext, ToolOutput};

#[derive(Debug, Default)]
pub struct WebSearchTool;

impl WebSearchTool {
    pub fn new(_c: &crate::config::WebSearchConfig) -> Result<Self, ToolError> {
        Ok(Self)
    }
}

#[async_trait]
impl Tool for WebSearchTool {
    fn name(&self) -> &'static str {
        "web_search_doc_and_reference"
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
