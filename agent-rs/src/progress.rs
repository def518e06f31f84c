//! The readable progress view on stderr (without `--json`): which tool runs, how long it
//! took, tokens so far.

use std::io::Write;

use tools::SecretRedactor;

use crate::events::AgentEvent;

/// Most characters of tool arguments and messages shown on one line.
const LINE_CHARS: usize = 160;

pub struct ProgressView {
    out: Box<dyn Write + Send>,
}

impl ProgressView {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out }
    }

    pub fn show(&mut self, event: &AgentEvent, redactor: &SecretRedactor) {
        let line = match event {
            AgentEvent::TaskStarted {
                model,
                workspace,
                sandbox,
                ..
            } => {
                let sandbox = sandbox.as_ref().map_or_else(String::new, |s| {
                    let network = match s.network {
                        tools::NetworkAccess::Off => "off",
                        tools::NetworkAccess::On => "on",
                        tools::NetworkAccess::Allow => "allow-list",
                    };
                    format!(", sandbox {} (network {network})", s.mode)
                });
                format!("agent-rs: model {model}, workspace {workspace}{sandbox}")
            }
            AgentEvent::SetupFinished {
                success,
                exit_code,
                timed_out,
                duration_ms,
                ..
            } => {
                let how = match (success, timed_out, exit_code) {
                    (true, _, _) => "ok".to_string(),
                    (false, true, _) => "timed out".to_string(),
                    (false, false, Some(code)) => format!("FAILED with exit code {code}"),
                    (false, false, None) => "FAILED".to_string(),
                };
                format!(
                    "agent-rs: setup {how} ({:.1} s; see setup.log)",
                    *duration_ms as f64 / 1000.0
                )
            }
            AgentEvent::ModelRequest { .. } | AgentEvent::ToolCall { .. } => return,
            AgentEvent::ModelRetry {
                attempt,
                reason,
                wait_ms,
                ..
            } => {
                format!("  model retry {attempt} in {wait_ms} ms: {reason}")
            }
            AgentEvent::ModelResponse {
                turn,
                tool_calls,
                total_usage,
                duration_ms,
                ..
            } => format!(
                "[turn {turn}] model answered in {duration_ms} ms, {tool_calls} tool call(s), {} tokens so far",
                total_usage.total_tokens
            ),
            AgentEvent::Message { content, .. } => format!("  says: {}", one_line(content)),
            AgentEvent::ToolResult {
                name,
                success,
                duration_ms,
                output,
                ..
            } => format!(
                "  {} {name} ({duration_ms} ms): {}",
                if *success { "ok  " } else { "FAIL" },
                one_line(output)
            ),
            AgentEvent::Nudge { reason, .. } => format!("  nudged the model: {reason}"),
            AgentEvent::ConversationResumed {
                history,
                summarized,
                ..
            } => {
                if *summarized {
                    "agent-rs: resuming with a summary of the earlier conversation".to_string()
                } else {
                    format!(
                        "agent-rs: resuming a conversation of {} message(s)",
                        history.len()
                    )
                }
            }
            AgentEvent::McpServer {
                server,
                status,
                tools,
                error,
            } => match error {
                Some(error) => format!("  MCP server {server}: {status}: {}", one_line(error)),
                None => format!("  MCP server {server}: {status}, {} tool(s)", tools.len()),
            },
            AgentEvent::ContextElided {
                elided_outputs,
                shortened_outputs,
                ..
            } => format!(
                "  context: elided {elided_outputs} old tool output(s), shortened \
                 {shortened_outputs} new one(s)"
            ),
            AgentEvent::TaskFinished {
                status,
                limit,
                turns,
                usage,
                duration_ms,
                error,
                ..
            } => {
                let mut line = format!(
                    "agent-rs: {status:?} after {turns} turn(s), {} tokens, {:.1} s",
                    usage.total_tokens,
                    *duration_ms as f64 / 1000.0
                );
                if let Some(limit) = limit {
                    line.push_str(&format!(" (limit: {limit:?})"));
                }
                if let Some(error) = error {
                    line.push_str(&format!(": {error}"));
                }
                line
            }
        };
        let _ = writeln!(self.out, "{}", redactor.redact(&line));
    }
}

fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= LINE_CHARS {
        flat
    } else {
        let cut: String = flat.chars().take(LINE_CHARS).collect();
        format!("{cut}…")
    }
}
