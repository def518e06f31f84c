//! The [`Tool`] trait and the values that pass through it.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::ToolsConfig;
use crate::error::ToolError;
use crate::jail::WorkspaceJail;
use crate::redact::SecretRedactor;
use crate::sandbox::Sandbox;

/// What every tool call can see: the workspace it is jailed in, the configuration, the
/// secrets whose placeholders the edit tools may put back (see [`crate::redact`]), who
/// is told before a file tool changes a file, and the sandbox shell commands run in.
///
/// [`ToolContext::new`] has no sandbox ([`Sandbox::off`]): a front end that runs a
/// model's commands decides one ([`Sandbox::resolve`]) and sets it with
/// [`ToolContext::with_sandbox`], as `agent-rs` does.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub jail: WorkspaceJail,
    pub config: Arc<ToolsConfig>,
    pub secrets: SecretRedactor,
    pub write_observer: Option<Arc<dyn WriteObserver>>,
    pub sandbox: Sandbox,
}

/// Told before a file tool (`edit_file_content`, `apply_patch`) changes, creates, moves
/// or deletes a file, so the caller can keep what was there first: the agent's diff uses
/// it for files its own scan of the workspace leaves out (ignored ones).
pub trait WriteObserver: Send + Sync + std::fmt::Debug {
    /// `path` is absolute, inside the workspace, and may not exist yet.
    fn before_write(&self, path: &Path);
}

impl ToolContext {
    pub fn new(jail: WorkspaceJail, config: Arc<ToolsConfig>) -> Self {
        Self {
            jail,
            config,
            secrets: SecretRedactor::default(),
            write_observer: None,
            sandbox: Sandbox::off(),
        }
    }

    /// The same context, running shell commands in `sandbox`.
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// The same context, telling `observer` before each file change.
    pub fn with_write_observer(mut self, observer: Arc<dyn WriteObserver>) -> Self {
        self.write_observer = Some(observer);
        self
    }

    /// The same context with the secrets the edit tools restore placeholders of.
    pub fn with_secrets(mut self, secrets: SecretRedactor) -> Self {
        self.secrets = secrets;
        self
    }
}

/// The result of a tool call that ran.
///
/// `content` is what the model reads. `success` is false when the call ran but its
/// outcome is a failure the model should notice (a shell command exiting non-zero, an HTTP
/// 500). `details` carries structured facts for events and progress views (exit code,
/// timings, truncation), never shown to the model twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub content: String,
    pub success: bool,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl ToolOutput {
    pub fn success(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            success: true,
            details: serde_json::Value::Null,
        }
    }

    pub fn failure(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            success: false,
            details: serde_json::Value::Null,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// How a tool presents itself to a model: an OpenAI-style function definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// One capability offered to the model.
#[async_trait]
pub trait Tool: Send + Sync {
    /// The name the model calls it by. Part of the contract with prompts and scripts.
    fn name(&self) -> &'static str;

    /// What the model is told the tool does, and when to use it.
    fn description(&self) -> &'static str;

    /// JSON Schema of the arguments object (see [`schema_for`]).
    fn parameters(&self) -> serde_json::Value;

    /// Whether a call may change the workspace or the outside world. The loop runs calls
    /// that only read concurrently, and the others one at a time, in order.
    fn mutates(&self) -> bool;

    /// Runs one call. `args` is the JSON object the model sent.
    async fn call(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name().to_string(),
            description: self.description().to_string(),
            parameters: self.parameters(),
        }
    }
}

/// The JSON Schema of an arguments struct, in the shape function-calling APIs accept
/// (an object schema, without the `$schema` and `title` decorations).
pub fn schema_for<T: JsonSchema>() -> serde_json::Value {
    let mut value = schemars::schema_for!(T).to_value();
    if let Some(map) = value.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
    }
    value
}

/// Decodes a call's arguments, with an error the model can act on.
///
/// Models sometimes send the arguments as a JSON string holding the object; that is
/// accepted too.
pub fn parse_args<T: DeserializeOwned>(
    tool: &'static str,
    args: serde_json::Value,
) -> Result<T, ToolError> {
    let args = match args {
        serde_json::Value::String(text) => {
            serde_json::from_str(&text).map_err(|err| ToolError::InvalidArguments {
                tool,
                message: format!("arguments are not a JSON object: {err}"),
            })?
        }
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other,
    };
    // serde would read a struct from an array too (`["x"]` as the first field); models
    // must send named arguments.
    if !args.is_object() {
        return Err(ToolError::InvalidArguments {
            tool,
            message: format!("arguments must be a JSON object, got {}", json_kind(&args)),
        });
    }
    serde_json::from_value(args).map_err(|err| ToolError::InvalidArguments {
        tool,
        message: err.to_string(),
    })
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Args {
        pattern: String,
    }

    #[test]
    fn object_arguments_decode() {
        let args: Args = parse_args("t", serde_json::json!({"pattern": "x"})).unwrap();
        assert_eq!(args.pattern, "x");
    }

    #[test]
    fn arguments_as_json_text_decode() {
        let args: Args = parse_args("t", serde_json::json!("{\"pattern\": \"y\"}")).unwrap();
        assert_eq!(args.pattern, "y");
    }

    #[test]
    fn array_and_scalar_arguments_are_refused() {
        for bad in [
            serde_json::json!(["x"]),
            serde_json::json!(3),
            serde_json::json!("[1]"),
        ] {
            let err = parse_args::<Args>("t", bad).unwrap_err();
            assert!(err.to_string().contains("must be a JSON object"), "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused_with_the_field_name() {
        let err =
            parse_args::<Args>("t", serde_json::json!({"pattern": "x", "extra": 1})).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
