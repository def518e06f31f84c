//! The typed events of a run: one schema for the trajectory file, the `--json` stream,
//! the service's live feed and the eval record.
//!
//! Each event is one JSON object on one line, `{"seq":..,"ts_ms":..,"type":"tool_call",...}`.
//! The JSON Schema published in `schemas/agent-events.schema.json` is generated from these
//! types (`agent-rs schema`), and a test keeps the file in step with the code.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::Usage;

/// One line of `trajectory.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventRecord {
    /// Position in the run, from 0, without gaps.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    #[serde(flatten)]
    pub event: AgentEvent,
}

/// What happened.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The run began.
    TaskStarted {
        task: String,
        model: String,
        workspace: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        target_file: Option<String>,
        max_turns: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_tokens: Option<u64>,
        timeout_secs: u64,
        tools: Vec<String>,
        /// The sandbox shell commands run in (mode, network, process cap).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sandbox: Option<tools::SandboxSummary>,
    },
    /// This run continues an earlier one (a follow-up message): the conversation it
    /// starts from, after the system prompt, the follow-up message last.
    ConversationResumed {
        /// The first task of the chain of runs.
        original_task: String,
        /// Whether the earlier turns were replaced by a summary (too long to repeat).
        summarized: bool,
        history: Vec<crate::model::ChatMessage>,
    },
    /// The task's setup script ended (before the agent; its output is in `setup.log`).
    SetupFinished {
        success: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        timed_out: bool,
        duration_ms: u64,
        /// The last lines of `setup.log`.
        log_tail: String,
    },
    /// A request is about to go to the model.
    ModelRequest {
        turn: u32,
        messages: usize,
        /// Rough size of the conversation (characters / 4).
        estimated_prompt_tokens: u64,
    },
    /// The model request failed and will be tried again.
    ModelRetry {
        turn: u32,
        attempt: u32,
        reason: String,
        wait_ms: u64,
    },
    /// A model response arrived: this is one turn.
    ModelResponse {
        turn: u32,
        tool_calls: usize,
        usage: Usage,
        /// Tokens used by the whole run so far.
        total_usage: Usage,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        finish_reason: Option<String>,
    },
    /// Text the model wrote (alongside tool calls, or as its final answer).
    Message { turn: u32, content: String },
    /// The model asked for a tool.
    ToolCall {
        turn: u32,
        call_id: String,
        name: String,
        /// The arguments as the model sent them (JSON text).
        arguments: String,
    },
    /// A tool call ended.
    ToolResult {
        turn: u32,
        call_id: String,
        name: String,
        success: bool,
        /// What the model was given back.
        output: String,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        details: serde_json::Value,
    },
    /// Where an MCP server stands: at the start of the run for every configured server,
    /// and again when one stops during the run.
    McpServer {
        server: String,
        /// `ready`, `failed` (could not start) or `stopped` (died during the run).
        status: String,
        /// The names its tools are offered under.
        tools: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The model was told it is going nowhere (an empty answer, the same failing call
    /// again); `message` is what it was told.
    Nudge {
        turn: u32,
        /// `empty_answer` or `repeated_failing_call`.
        reason: String,
        message: String,
    },
    /// Old tool outputs were shortened so the conversation fits the model's window.
    ContextElided {
        turn: u32,
        elided_outputs: usize,
        /// Results the model had not seen yet, each cut to a share of the window (they
        /// are never elided).
        #[serde(default)]
        shortened_outputs: usize,
        estimated_tokens_before: u64,
        estimated_tokens_after: u64,
    },
    /// The run ended; the same facts as `result.json`.
    TaskFinished {
        status: RunStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<LimitKind>,
        turns: u32,
        usage: Usage,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        final_message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        timing: Timing,
    },
}

/// Where a run's wall time went, to the microsecond: waiting on the model, running tools,
/// and the rest (the harness itself: prompt handling, events, bookkeeping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Timing {
    pub total_ms: f64,
    pub model_ms: f64,
    pub tools_ms: f64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The model answered without asking for tools.
    Completed,
    /// A limit stopped the run; see `limit`.
    LimitReached,
    /// The model could not be used (unreachable, auth, retries exhausted).
    ModelError,
    /// Anything else (a fatal tool failure, an I/O error).
    Error,
    /// The model went nowhere despite being told (empty answers, the same failing call
    /// over and over); `error` says which.
    Stuck,
}

/// Which limit stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    MaxTurns,
    MaxTokens,
    Timeout,
}

impl AgentEvent {
    pub fn mcp_server(report: crate::mcp::ServerReport) -> Self {
        let status = match report.status {
            crate::mcp::ServerStatus::Ready => "ready",
            crate::mcp::ServerStatus::Failed => "failed",
            crate::mcp::ServerStatus::Stopped => "stopped",
        };
        Self::McpServer {
            server: report.server,
            status: status.to_string(),
            tools: report.tools,
            error: report.error,
        }
    }
}

/// The JSON Schema of one trajectory line, as published in `schemas/`.
pub fn event_schema() -> serde_json::Value {
    schemars::schema_for!(EventRecord).to_value()
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
