//! Results the model has not seen yet are never cut from the context unsaid: when one
//! reply asks for thousands of calls, the next request carries every result (each
//! shortened to a fair share of the window when together they would not fit) or, when
//! not even a few hundred bytes each would fit, the first results and a note saying how
//! many of the rest were left out.

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

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_results_too_many_to_shorten_still_fit_with_the_rest_counted() {
    let case = Case::new(|dir| {
        let body: String = (0..40)
            .map(|i| format!("line {i:02} {}\n", "v".repeat(40)))
            .collect();
        std::fs::write(dir.join("f.txt"), body).unwrap();
    });
    let reads: Vec<(&str, Value)> = (0..3000)
        .map(|_| ("read_file_content", json!({"file_path": "f.txt"})))
        .collect();
    let config = config(&case, 131_072);
    let run = case
        .run_with(vec![calls(reads)], &[], &["--config", &config])
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let request = &case.requests()[1];
    let seen = tool_messages(request);
    assert_eq!(seen.len(), 3000, "every call keeps its result message");
    // What the model reads: the results and the calls they answer.
    let calls_bytes: usize = request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|message| message["tool_calls"].as_array())
        .flatten()
        .map(|call| call["function"]["arguments"].as_str().unwrap().len() + 20)
        .sum();
    let results_bytes: usize = seen.iter().map(String::len).sum();
    assert!(
        calls_bytes + results_bytes <= 131_072 * 4,
        "the request overflows the window: {results_bytes} bytes of results, \
         {calls_bytes} of calls"
    );
    let shown = seen
        .iter()
        .take_while(|content| !content.starts_with("[left out"))
        .count();
    assert!(shown > 0 && shown < 3000, "{shown} shown");
    for content in &seen[..shown] {
        assert!(content.contains("1\tline 00"), "{content}");
    }
    let note = &seen[shown];
    assert!(note.contains("asked for 3000 calls"), "{note}");
    assert!(
        note.contains(&format!("results of {} ", 3000 - shown)),
        "{note}"
    );
}
