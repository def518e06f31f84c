//! The registry: tool name + JSON arguments in, redacted output out.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::apply_patch::ApplyPatchTool;
use crate::call_api::CallApiTool;
use crate::config::ToolsConfig;
use crate::edit_file::EditFileTool;
use crate::error::ToolError;
use crate::list_directory::ListDirectoryTool;
use crate::output_cap::truncate_middle;
use crate::read_file::ReadFileTool;
use crate::redact::SecretRedactor;
use crate::search_code::SearchCodeTool;
use crate::shell::ShellTool;
use crate::tool::{Tool, ToolContext, ToolOutput, ToolSpec};
use crate::web_search::WebSearchTool;

/// The tools offered to a model, by name.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<&'static str, Arc<dyn Tool>>,
    redactor: SecretRedactor,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ToolRegistry {
    /// An empty registry; see [`ToolRegistry::builtin`] for the usual set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every built-in tool, configured from `config`.
    pub fn builtin(config: &ToolsConfig) -> Result<Self, ToolError> {
        let mut registry = Self::new();
        registry.register(ShellTool);
        registry.register(ReadFileTool);
        registry.register(EditFileTool);
        registry.register(ApplyPatchTool);
        registry.register(SearchCodeTool);
        registry.register(ListDirectoryTool);
        registry.register(WebSearchTool::new(&config.web_search)?);
        registry.register(CallApiTool::new(&config.call_api)?);
        Ok(registry)
    }

    /// Adds a tool, replacing any tool of the same name.
    pub fn register(&mut self, tool: impl Tool + 'static) {
        self.tools.insert(tool.name(), Arc::new(tool));
    }

    /// Secret values scrubbed from every output and error message.
    pub fn with_redactor(mut self, redactor: SecretRedactor) -> Self {
        self.redactor = redactor;
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tools.keys().copied()
    }

    /// The function definitions to send to a model, in name order.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|tool| tool.spec()).collect()
    }

    /// Runs one call. Output and error text come back with secrets redacted and capped
    /// at `result_max_bytes` (head and tail kept); a fatal error stays fatal.
    pub async fn call(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let tool = self
            .get(name)
            .ok_or_else(|| ToolError::UnknownTool(name.to_string()))?;
        let cap = ctx.config.result_max_bytes.max(1);
        // The edit tools put placeholders of these secrets back (in files holding them).
        let with_secrets;
        let ctx = if self.redactor.is_empty() || !ctx.secrets.is_empty() {
            ctx
        } else {
            with_secrets = ctx.clone().with_secrets(self.redactor.clone());
            &with_secrets
        };
        match tool.call(ctx, args).await {
            Ok(mut output) => {
                if !self.redactor.is_empty() {
                    output.content = self.redactor.redact(&output.content);
                    let details = self.redactor.redact(&output.details.to_string());
                    output.details = serde_json::from_str(&details).unwrap_or_default();
                }
                if output.content.len() > cap {
                    output.content = truncate_middle(&output.content, cap);
                }
                Ok(output)
            }
            Err(ToolError::Fatal(message)) => Err(ToolError::Fatal(self.bounded(&message, cap))),
            Err(err) => {
                let message = err.to_string();
                if self.redactor.is_empty() && message.len() <= cap {
                    return Err(err);
                }
                Err(ToolError::Rejected(self.bounded(&message, cap)))
            }
        }
    }

    /// Text for the model: secrets redacted, at most `cap` bytes.
    fn bounded(&self, text: &str, cap: usize) -> String {
        truncate_middle(&self.redactor.redact(text), cap)
    }
}
