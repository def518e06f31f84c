//! Running the tool calls of one model response.
//!
//! Calls that only read run concurrently; a call that may write runs alone, after
//! everything before it and before everything after it. So `[read, read, edit, read]`
//! runs as three steps: both reads together, then the edit, then the last read. The model
//! sees the results in the order it asked, whatever order they finished in.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tools::{ToolContext, ToolError};

use super::toolbox::Toolbox;
use crate::model::ToolCall;

/// The result of one call, as the conversation and the trajectory need it.
#[derive(Debug, Clone)]
pub struct ToolCallOutcome {
    pub call: ToolCall,
    /// What the model reads back.
    pub content: String,
    pub success: bool,
    pub details: serde_json::Value,
    pub duration: Duration,
    /// Set when the tool failed in a way that must end the run.
    pub fatal: Option<String>,
}

/// Splits calls into steps that may each run concurrently.
pub fn plan_steps<'a>(tools: &Toolbox<'_>, calls: &'a [ToolCall]) -> Vec<&'a [ToolCall]> {
    let mut steps = Vec::new();
    let mut start = 0;
    for (index, call) in calls.iter().enumerate() {
        if tools.mutates(&call.name) {
            if start < index {
                steps.push(&calls[start..index]);
            }
            steps.push(&calls[index..=index]);
            start = index + 1;
        }
    }
    if start < calls.len() {
        steps.push(&calls[start..]);
    }
    steps
}

/// Runs one step's calls concurrently; results in the calls' order.
pub async fn run_step(
    tools: &Toolbox<'_>,
    ctx: &ToolContext,
    calls: &[ToolCall],
) -> Vec<ToolCallOutcome> {
    join_all(calls.iter().map(|call| run_one(tools, ctx, call))).await
}

async fn run_one(tools: &Toolbox<'_>, ctx: &ToolContext, call: &ToolCall) -> ToolCallOutcome {
    let started = Instant::now();
    let outcome = |content: String, success: bool, details, fatal| ToolCallOutcome {
        call: call.clone(),
        content,
        success,
        details,
        duration: started.elapsed(),
        fatal,
    };
    let args = match parse_arguments(&call.arguments) {
        Ok(args) => args,
        Err(message) => return outcome(message, false, serde_json::Value::Null, None),
    };
    match tools.call(ctx, &call.name, args).await {
        Ok(output) => outcome(output.content, output.success, output.details, None),
        Err(err @ ToolError::UnknownTool(_)) => {
            let names = tools.names();
            let message = format!("error: {err}; available tools: {}", names.join(", "));
            outcome(message, false, serde_json::Value::Null, None)
        }
        Err(err) if err.is_fatal() => {
            let message = err.to_string();
            outcome(
                format!("error: {message}"),
                false,
                serde_json::Value::Null,
                Some(message),
            )
        }
        Err(err) => outcome(
            format!("error: {err}"),
            false,
            serde_json::Value::Null,
            None,
        ),
    }
}

/// Tool arguments arrive as JSON text; empty means no arguments.
fn parse_arguments(text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|err| {
        format!("error: the tool arguments are not valid JSON ({err}); send a JSON object")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str) -> ToolCall {
        ToolCall {
            id: format!("id-{name}"),
            name: name.into(),
            arguments: "{}".into(),
        }
    }

    #[test]
    fn reads_group_and_writes_stand_alone() {
        let registry = tools::ToolRegistry::builtin(&Default::default()).unwrap();
        let registry = Toolbox::builtin(&registry);
        let calls = [
            call("read_file_content"),
            call("search_code"),
            call("edit_file_content"),
            call("list_directory"),
            call("apply_patch"),
            call("run_shell_command"),
        ];
        let steps = plan_steps(&registry, &calls);
        let names: Vec<Vec<&str>> = steps
            .iter()
            .map(|step| step.iter().map(|c| c.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["read_file_content", "search_code"],
                vec!["edit_file_content"],
                vec!["list_directory"],
                vec!["apply_patch"],
                vec!["run_shell_command"],
            ]
        );
    }

    #[test]
    fn bad_json_arguments_become_a_message_for_the_model() {
        let err = parse_arguments("{not json").unwrap_err();
        assert!(err.contains("not valid JSON"));
        assert_eq!(parse_arguments("  ").unwrap(), serde_json::json!({}));
    }
}
