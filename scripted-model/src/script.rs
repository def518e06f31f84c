//! The script a [`ScriptedServer`](super::ScriptedServer) replays: what the "model" answers
//! to each request, in order.
//!
//! Scripts are written by hand (test fixtures, eval cases), so the types are plain serde
//! structs with `deny_unknown_fields`: a typo in a script fails at load time with the
//! offending step named, instead of silently replaying something else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Model name reported when a script does not name one.
pub const DEFAULT_MODEL: &str = "scripted";

/// A whole script: the model name the server claims to be, and the steps it replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Reported in `GET /v1/models` and in every completion's `model` field.
    #[serde(default = "default_model")]
    pub model: String,
    /// One step per chat-completion request, consumed in order.
    pub steps: Vec<Step>,
}

fn default_model() -> String {
    DEFAULT_MODEL.to_owned()
}

/// What the server does with one chat-completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// An assistant message asking for tool calls (`finish_reason: "tool_calls"`).
    ToolCalls {
        calls: Vec<ScriptedToolCall>,
        /// Text the assistant says alongside the calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<ScriptedUsage>,
    },
    /// A final assistant message (`finish_reason: "stop"`).
    Message {
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<ScriptedUsage>,
    },
    /// An HTTP error, as a provider reports rate limits, outages and bad keys.
    Error {
        /// HTTP status, 400..=599.
        status: u16,
        /// Sent as the `Retry-After` header (seconds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
        /// Replaces the default error message in the OpenAI-style error body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Replaces the whole body: a JSON string is sent as raw text (think of an HTML
        /// page from a proxy), anything else as JSON.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Value>,
    },
    /// The connection breaks mid-response: a stream stops after its first chunks without
    /// `[DONE]`; a non-streaming body is truncated.
    CutStream {
        /// Partial assistant text sent before the cut.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
    },
    /// Waits before answering with `then` (timeout tests). The pair is one step.
    Delay { ms: u64, then: Box<Step> },
}

/// One tool call the scripted assistant makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedToolCall {
    pub name: String,
    /// Any JSON value; serialized to the JSON string the API carries. A JSON string is
    /// sent verbatim, which lets a script send malformed arguments on purpose.
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl ScriptedToolCall {
    /// The `function.arguments` string as the API carries it.
    pub fn arguments_string(&self) -> String {
        match &self.arguments {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        }
    }
}

/// Token counts a step reports instead of the server's estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "malformed script{origin}: {source} (expected {{\"model\": \"...\", \"steps\": [...]}} \
         with steps of type tool_calls, message, error, cut_stream or delay)"
    )]
    Parse {
        /// ` in FILE` when loaded from a file, empty otherwise.
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid script: step {index}: {reason}")]
    Invalid { index: usize, reason: String },
}

impl Script {
    /// A script with the default model name.
    pub fn new(steps: Vec<Step>) -> Self {
        Self {
            model: default_model(),
            steps,
        }
    }

    /// Parses and validates a script from JSON text.
    pub fn from_json(json: &str) -> Result<Self, ScriptError> {
        Self::parse(json, String::new())
    }

    /// Reads, parses and validates a script file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ScriptError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, format!(" in {}", path.display()))
    }

    /// Builds a script from an already parsed JSON value (e.g. `serde_json::json!`).
    pub fn from_value(value: Value) -> Result<Self, ScriptError> {
        let script: Self = serde_json::from_value(value).map_err(|source| ScriptError::Parse {
            origin: String::new(),
            source,
        })?;
        script.validate()?;
        Ok(script)
    }

    fn parse(json: &str, origin: String) -> Result<Self, ScriptError> {
        let script: Self =
            serde_json::from_str(json).map_err(|source| ScriptError::Parse { origin, source })?;
        script.validate()?;
        Ok(script)
    }

    /// Checks what serde cannot: values in range, names present.
    pub fn validate(&self) -> Result<(), ScriptError> {
        for (index, step) in self.steps.iter().enumerate() {
            step.validate()
                .map_err(|reason| ScriptError::Invalid { index, reason })?;
        }
        Ok(())
    }
}

impl Step {
    fn validate(&self) -> Result<(), String> {
        match self {
            Step::ToolCalls { calls, .. } => {
                if calls.is_empty() {
                    return Err("tool_calls needs at least one call in \"calls\"".to_owned());
                }
                if let Some(position) = calls.iter().position(|call| call.name.trim().is_empty()) {
                    return Err(format!("call {position} has an empty \"name\""));
                }
                Ok(())
            }
            Step::Error { status, .. } if !(400..=599).contains(status) => Err(format!(
                "error status {status} is not an HTTP error status (use 400..=599)"
            )),
            Step::Delay { then, .. } => then.validate(),
            Step::Message { .. } | Step::Error { .. } | Step::CutStream { .. } => Ok(()),
        }
    }

    /// The step that finally answers, after any delays.
    pub(crate) fn answer(&self) -> &Step {
        match self {
            Step::Delay { then, .. } => then.answer(),
            other => other,
        }
    }

    /// The total wait before answering, summed over nested delays.
    pub(crate) fn total_delay_ms(&self) -> u64 {
        match self {
            Step::Delay { ms, then } => ms.saturating_add(then.total_delay_ms()),
            _ => 0,
        }
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
