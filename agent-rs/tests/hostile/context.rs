//! Results the model has not seen yet are never cut from the context: when one reply
//! asks for thousands of calls, the next request carries every result (each shortened
//! to a fair share of the window when together they would not fit).

use serde_json::{Value, json};

use crate::{Case, calls};

/// The tool messages of a request body.
fn tool_messages(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["role"] == "tool")
        .map(|message| message["content"].as_str().unwrap().to_string())
        .collect()
}

fn config(case: &Case, window: u64) -> String {
    let path = case.out.path().join("agent.toml");
    std::fs::write(&path, format!("[model]\ncontext_window = {window}\n")).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_parallel_results_all_reach_the_model() {
    let case = Case::new(|dir| std::fs::write(dir.join("f.txt"), "alpha\nbeta\n").unwrap());
    let reads: Vec<(&str, Value)> = (0..3000)
        .map(|_| ("read_file_content", json!({"file_path": "f.txt"})))
        .collect();
    let config = config(&case, 65_536);
    let run = case
        .run_with(vec![calls(reads)], &[], &["--config", &config])
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let seen = tool_messages(&case.requests()[1]);
    assert_eq!(seen.len(), 3000);
    for content in &seen {
        assert!(
            content.contains("1\talpha"),
            "a result was cut before it was seen: {content}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_larger_than_the_window_is_shortened_evenly_not_dropped() {
    let case = Case::new(|dir| {
        for n in 0..20 {
            let body: String = (0..1_000).map(|i| format!("file {n} line {i}\n")).collect();
            std::fs::write(dir.join(format!("f{n}.txt")), body).unwrap();
        }
    });
    let reads: Vec<(&str, Value)> = (0..20)
        .map(|n| {
            (
                "read_file_content",
                json!({"file_path": format!("f{n}.txt")}),
            )
        })
        .collect();
    let config = config(&case, 16_000);
    let run = case
        .run_with(vec![calls(reads)], &[], &["--config", &config])
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let seen = tool_messages(&case.requests()[1]);
    assert_eq!(seen.len(), 20);
    let total: usize = seen.iter().map(String::len).sum();
    assert!(
        total < 16_000 * 4,
        "the batch was fitted to the window: {total} bytes"
    );
    for (n, content) in seen.iter().enumerate() {
        assert!(
            content.contains(&format!("file {n} line 0")),
            "result {n} lost its start: {}",
            content.chars().take(200).collect::<String>()
        );
        assert!(!content.starts_with("[output elided"), "{content}");
    }
}
