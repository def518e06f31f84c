//! `evals compare BASE NEW`: what got better or worse, and the exit code CI keys on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness_support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use harness_support::*;

/// A report.json with one attempt per task, `tokens` and `turns` per attempt.
fn report(dir: &Path, name: &str, outcomes: &[(&str, bool)], tokens: u64, turns: u64) -> PathBuf {
    let tasks: Vec<Value> = outcomes
        .iter()
        .map(|(id, passed)| {
            json!({"id": id, "passed": u32::from(*passed), "pass_rate": if *passed {1.0} else {0.0},
                "attempts": [{"task_id": id, "attempt": 1, "passed": passed,
                    "tokens": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
                    "turns": turns, "agent_duration_ms": 1000}]})
        })
        .collect();
    let passed = outcomes.iter().filter(|(_, p)| *p).count() as u64;
    let attempts = outcomes.len() as u64;
    let value = json!({
        "suite": "s", "model": "m", "scripted": false, "started_at": "2025-01-01T00:00:00Z",
        "repeat": 1, "tasks": tasks,
        "totals": {"tasks": attempts, "attempts": attempts, "passed": passed,
            "pass_rate": passed as f64 / attempts as f64,
            "prompt_tokens": tokens * attempts, "completion_tokens": 0,
            "total_tokens": tokens * attempts, "turns": turns * attempts,
            "agent_time_ms": 1000 * attempts, "check_time_ms": 0, "wall_time_ms": 5000}
    });
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["compare", base.to_str().unwrap(), new.to_str().unwrap()];
    args.extend(extra);
    evals(&args)
}

#[test]
fn swapped_outcomes_are_listed_and_an_unchanged_rate_passes() {
    let dir = tempfile::tempdir().unwrap();
    let base = report(
        dir.path(),
        "base.json",
        &[("a", true), ("b", false), ("c", true)],
        100,
        4,
    );
    let new = report(
        dir.path(),
        "new.json",
        &[("a", false), ("b", true), ("c", true)],
        150,
        2,
    );
    let run = compare(&base, &new, &[]);
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
    let text = stdout(&run);
    assert!(text.contains("better (1):\n  b: fail→pass\n"), "{text}");
    assert!(text.contains("worse (1):\n  a: pass→fail\n"), "{text}");
    assert!(
        text.contains("pass rate: 66.7% → 66.7% (+0.0 points)"),
        "{text}"
    );
    assert!(
        text.contains("tokens per attempt: 100.0 → 150.0 (+50.0, +50.0%)"),
        "{text}"
    );
    assert!(
        text.contains("turns per attempt: 4.0 → 2.0 (-2.0, -50.0%)"),
        "{text}"
    );
}

#[test]
fn strict_fails_on_any_task_that_got_worse() {
    let dir = tempfile::tempdir().unwrap();
    let base = report(dir.path(), "base.json", &[("a", true), ("b", false)], 1, 1);
    let new = report(dir.path(), "new.json", &[("a", false), ("b", true)], 1, 1);
    let run = compare(&base, &new, &["--strict"]);
    assert_eq!(code(&run), 1);
    assert!(stderr(&run).contains("regression"), "{}", stderr(&run));
}

#[test]
fn pass_rate_drop_beyond_the_threshold_fails_and_within_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    let all = [("a", true), ("b", true), ("c", true), ("d", true)];
    let base = report(dir.path(), "base.json", &all, 1, 1);
    let new = report(
        dir.path(),
        "new.json",
        &[("a", true), ("b", true), ("c", true), ("d", false)],
        1,
        1,
    );
    let dropped = compare(&base, &new, &[]);
    assert_eq!(
        code(&dropped),
        1,
        "a 25-point drop is over the 5-point default"
    );
    assert!(stdout(&dropped).contains("worse (1):\n  d: pass→fail"));
    let tolerated = compare(&base, &new, &["--threshold", "0.3"]);
    assert_eq!(code(&tolerated), 0, "stderr: {}", stderr(&tolerated));
    let improved = compare(&new, &base, &[]);
    assert_eq!(code(&improved), 0);
    assert!(stdout(&improved).contains("better (1):\n  d: fail→pass"));
}

#[test]
fn tasks_in_only_one_report_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let base = report(
        dir.path(),
        "base.json",
        &[("a", true), ("gone", true)],
        1,
        1,
    );
    let new = report(
        dir.path(),
        "new.json",
        &[("a", true), ("fresh", true)],
        1,
        1,
    );
    let text = stdout(&compare(&base, &new, &[]));
    assert!(text.contains("only in new (1):\n  fresh"), "{text}");
    assert!(text.contains("only in base (1):\n  gone"), "{text}");
    assert!(text.contains("no task changed outcome"), "{text}");
}

#[test]
fn unreadable_report_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = report(dir.path(), "base.json", &[("a", true)], 1, 1);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"suite\": 1}").unwrap();
    let run = compare(&base, &bad, &[]);
    assert_eq!(code(&run), 2);
    assert!(
        stderr(&run).contains("bad.json is not a report.json"),
        "{}",
        stderr(&run)
    );
}
