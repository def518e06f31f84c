//! The tools one run offers: the built-in registry and the tools of the run's MCP
//! servers, behind one name lookup. The loop plans, runs and records calls without
//! caring where a tool lives.

use tools::{SecretRedactor, ToolContext, ToolError, ToolOutput, ToolRegistry, ToolSpec};

use crate::mcp::McpServers;

pub struct Toolbox<'a> {
    pub registry: &'a ToolRegistry,
    pub mcp: Option<&'a McpServers>,
    /// Applied to MCP results (the registry redacts its own).
    redactor: SecretRedactor,
}

impl<'a> Toolbox<'a> {
    pub fn new(
        registry: &'a ToolRegistry,
        mcp: Option<&'a McpServers>,
        redactor: SecretRedactor,
    ) -> Self {
        Self {
            registry,
            mcp,
            redactor,
        }
    }

    /// Built-in tools only.
    pub fn builtin(registry: &'a ToolRegistry) -> Self {
        Self::new(registry, None, SecretRedactor::default())
    }

    /// What the model is offered: the built-in tools, then the MCP tools, each in name
    /// order.
    pub fn specs(&self) -> Vec<ToolSpec> {
        let mut specs = self.registry.specs();
        if let Some(mcp) = self.mcp {
            specs.extend(mcp.specs());
        }
        specs
    }

    pub fn names(&self) -> Vec<String> {
        self.specs().into_iter().map(|spec| spec.name).collect()
    }

    /// Whether a call may change anything; unknown tools only produce an error message.
    pub fn mutates(&self, name: &str) -> bool {
        if let Some(tool) = self.registry.get(name) {
            return tool.mutates();
        }
        self.mcp
            .and_then(|mcp| mcp.get(name))
            .is_some_and(|tool| !tool.read_only)
    }

    pub async fn call(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        if self.registry.get(name).is_some() {
            return self.registry.call(ctx, name, args).await;
        }
        let Some(mcp) = self.mcp.filter(|mcp| mcp.get(name).is_some()) else {
            return Err(ToolError::UnknownTool(name.to_string()));
        };
        let outcome = mcp.call(name, args).await;
        let content = if self.redactor.is_empty() {
            outcome.content
        } else {
            self.redactor.redact(&outcome.content)
        };
        Ok(ToolOutput {
            content,
            success: outcome.success,
            details: outcome.details,
        })
    }
}
