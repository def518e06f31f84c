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
                model, workspace, ..
            } => {
                format!("agent-rs: model {model}, workspace {workspace}")
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
