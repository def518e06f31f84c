//! A model going nowhere: empty answers and the same failing call are nudged, then the
//! run stops as `stuck` (exit 3) instead of looping to the turn limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::*;

fn empty() -> serde_json::Value {
    json!({"type": "message", "content": ""})
}

fn failing_read() -> serde_json::Value {
    json!({"type": "tool_calls", "calls": [
        {"name": "read_file_content", "arguments": {"file_path": "missing.txt"}}
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_answer_is_nudged_and_the_run_goes_on() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = server(json!({"model": "scripted", "steps": [
        empty(),
        {"type": "message", "content": "Nothing to change."}
    ]}))
    .await;
    let run = run_agent(ws.path(), out.path(), &server.base_url(), &["look"], &[]).await;
    assert_eq!(run.code(), 0, "stderr: {}", run.stderr());
    assert_eq!(run.result()["final_message"], "Nothing to change.");
    let nudges: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "nudge")
        .collect();
    assert_eq!(nudges.len(), 1);
    assert_eq!(nudges[0]["reason"], "empty_answer");
    // The model was told, in the conversation itself.
    let second = server.requests()[1].body.to_string();
    assert!(second.contains("Your last reply was empty"), "{second}");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_answers_that_go_on_stop_the_run_as_stuck() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server =
        server(json!({"model": "scripted", "steps": [empty(), empty(), empty(), empty()]})).await;
    let run = run_agent(ws.path(), out.path(), &server.base_url(), &["look"], &[]).await;
    assert_eq!(run.code(), 3, "stderr: {}", run.stderr());
    let result = run.result();
    assert_eq!(result["status"], "stuck");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("neither text nor a tool call 3 times"),
        "{result}"
    );
    assert_eq!(
        server.requests().len(),
        3,
        "the run went on after the third empty answer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_failing_call_is_nudged_then_stops_the_run_as_stuck() {
    let ws = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let steps: Vec<_> = (0..8).map(|_| failing_read()).collect();
    let server = server(json!({"model": "scripted", "steps": steps})).await;
    let run = run_agent(ws.path(), out.path(), &server.base_url(), &["read it"], &[]).await;
    assert_eq!(run.code(), 3, "stderr: {}", run.stderr());
    let result = run.result();
    assert_eq!(result["status"], "stuck");
    assert_eq!(result["turns"], 5);
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("`read_file_content` 5 turns in a row"),
        "{result}"
    );
    let nudges: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "nudge")
        .collect();
    assert_eq!(nudges.len(), 1);
    assert_eq!(nudges[0]["reason"], "repeated_failing_call");
    assert_eq!(nudges[0]["turn"], 3);
    let fourth = server.requests()[3].body.to_string();
    assert!(
        fourth.contains("has now failed 3 times in a row"),
        "{fourth}"
    );
}
