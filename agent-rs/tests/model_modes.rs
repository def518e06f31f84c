//! How the agent speaks to models that differ: tool calls written as text, token limits
//! and reasoning settings per model family, all seen on the wire by the scripted server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::*;

fn config(dir: &std::path::Path, model_table: &str) -> String {
    let path = dir.join("agent.toml");
    std::fs::write(&path, format!("[model]\n{model_table}\n")).unwrap();
    path.display().to_string()
}

fn text_call(name: &str, arguments: serde_json::Value) -> String {
    format!(
        "I will look first.\n<tool_call>\n{}\n</tool_call>",
        json!({"name": name, "arguments": arguments})
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn text_tool_calling_describes_tools_in_the_prompt_and_reads_calls_from_the_text() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("notes.txt"), "the answer is 42\n").unwrap();
    let config = config(cfg.path(), "tool_calling = \"text\"");
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "message", "content": text_call("read_file_content", json!({"file_path": "notes.txt"}))},
        {"type": "message", "content": "It says 42."}
    ]}))
    .await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "read the notes"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_eq!(run.result()["final_message"], "It says 42.");

    let requests = server.requests();
    let first = &requests[0].body;
    assert!(first.get("tools").is_none(), "{first}");
    let system = first["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("<tool_call>") && system.contains("\"read_file_content\""),
        "{system}"
    );
    // The call was read from the text and run; its result went back as text.
    let results: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "tool_result")
        .collect();
    assert!(
        results[0]["output"]
            .as_str()
            .unwrap()
            .contains("the answer is 42"),
        "{results:?}"
    );
    let messages = requests[1].body["messages"].as_array().unwrap().clone();
    let last = messages.last().unwrap();
    assert_eq!(last["role"], "user");
    assert!(
        last["content"]
            .as_str()
            .unwrap()
            .starts_with("<tool_response>"),
        "{last}"
    );
    assert!(messages.iter().all(|m| m["role"] != "tool"), "{messages:?}");
    let prompt = std::fs::read_to_string(out.path().join("prompt.txt")).unwrap();
    assert!(prompt.contains("tool calling: text"), "{prompt}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_native_model_whose_server_leaks_calls_as_text_still_gets_them_run() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        {"type": "message", "content": text_call("list_directory", json!({}))},
        {"type": "message", "content": "Listed."}
    ]}))
    .await;
    let run = run_agent(ws.path(), out.path(), &server.base_url(), &["list"], &[]).await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let calls: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "tool_call")
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["name"], "list_directory");
    assert!(server.requests()[0].body.get("tools").is_some());
    // The text around the block is kept as what the model said.
    let said: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "message")
        .collect();
    assert_eq!(said[0]["content"], "I will look first.");
}

#[tokio::test(flavor = "multi_thread")]
async fn reasoning_models_get_max_completion_tokens_and_the_configured_effort() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let config = config(
        cfg.path(),
        "max_output_tokens = 2048\nreasoning_effort = \"low\"",
    );
    let server =
        server(json!({"model": "o3-mini", "steps": [{"type": "message", "content": "ok"}]})).await;
    let run = run_agent(
        ws.path(),
        out.path(),
        &server.base_url(),
        &["--config", &config, "--model", "openai/o3-mini", "go"],
        &[],
    )
    .await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    let body = &server.requests()[0].body;
    assert_eq!(body["max_completion_tokens"], 2048, "{body}");
    assert!(body.get("max_tokens").is_none(), "{body}");
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["stream_options"]["include_usage"], true);
}
