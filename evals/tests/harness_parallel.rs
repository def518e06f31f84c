//! `--parallel`: attempts overlap up to the bound and never beyond it, as the start and
//! end times recorded in report.json show.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness_support;

use serde_json::json;

use harness_support::*;

/// (started_ms, finished_ms) of every attempt of a run of two one-second tasks.
fn intervals(parallel: &str) -> Vec<(u64, u64)> {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "name = \"sleepy\"\n");
    for name in ["first", "second"] {
        task(
            &suite,
            name,
            "instruction = \"wait a second\"\ncheck = \"true\"\n",
            Some(json!({"steps": [shell_step("sleep 1"), done_step()]})),
            &[],
        );
    }
    let out = root.path().join("out");
    let run = run_suite(&suite, &out, &["--scripted", "--parallel", parallel]);
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
    let report = read_json(&out.join("report.json"));
    let mut spans: Vec<(u64, u64)> = attempts(&report)
        .iter()
        .map(|a| {
            assert_eq!(a["passed"], true, "{a:#}");
            (
                a["started_ms"].as_u64().unwrap(),
                a["finished_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    spans.sort();
    spans
}

#[test]
fn two_parallel_slots_run_two_attempts_at_once() {
    let spans = intervals("2");
    assert!(
        spans[1].0 < spans[0].1,
        "the second attempt started only after the first ended: {spans:?}"
    );
}

#[test]
fn one_parallel_slot_runs_attempts_one_after_another() {
    let spans = intervals("1");
    assert!(
        spans[1].0 >= spans[0].1,
        "attempts overlapped with --parallel 1: {spans:?}"
    );
}
