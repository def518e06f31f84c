//! The scripted model as the end-to-end tests drive it, and what it saw.

use scripted_model::{Script, ScriptedServer};
use serde_json::Value;

/// The scripted model, from its steps (JSON values, in order, shared by every task that
/// talks to it: a test that runs several tasks gives each its own, or enough steps).
pub async fn scripted_model(steps: Value) -> ScriptedServer {
    let script = serde_json::json!({"model": "scripted", "steps": steps}).to_string();
    ScriptedServer::start(Script::from_json(&script).unwrap())
        .await
        .unwrap()
}

/// A step in which the model runs one shell command.
pub fn shell_step(command: &str) -> Value {
    serde_json::json!({"type": "tool_calls", "calls": [{"name": "run_shell_command",
        "arguments": {"command_string": command}}]})
}

/// The two steps that fix `calc.py` (see [`crate::CALC_PY`]) and say so.
pub fn fix_add_steps() -> [Value; 2] {
    [
        serde_json::json!({"type": "tool_calls", "calls": [{"name": "edit_file_content",
            "arguments": {"file_path": "calc.py", "old_text": "return a - b",
                          "new_text": "return a + b"}}]}),
        serde_json::json!({"type": "message", "content": "Fixed add."}),
    ]
}

/// How many runs of the agent the model saw: each run starts with a request whose
/// conversation holds no assistant turn yet.
pub fn agent_runs(model: &ScriptedServer) -> usize {
    model
        .requests()
        .iter()
        .filter(|request| {
            !request.body["messages"]
                .as_array()
                .is_some_and(|messages| messages.iter().any(|m| m["role"] == "assistant"))
        })
        .count()
}
