#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// C(n, k) as a float, the slow way.
fn choose(n: u32, k: u32) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

#[test]
fn pass_at_k_matches_the_binomial_definition() {
    for n in 1..=8 {
        for c in 0..=n {
            for k in 1..=n {
                let direct = 1.0 - choose(n - c, k) / choose(n, k);
                let computed = pass_at_k(n, c, k);
                assert!(
                    (direct - computed).abs() < 1e-12,
                    "n={n} c={c} k={k}: {direct} vs {computed}"
                );
            }
        }
    }
}

#[test]
fn pass_at_k_edges() {
    assert_eq!(pass_at_k(5, 0, 3), 0.0);
    assert_eq!(pass_at_k(5, 5, 1), 1.0);
    assert_eq!(pass_at_k(3, 2, 2), 1.0);
    assert!((pass_at_k(3, 1, 1) - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(pass_at_k(3, 1, 4), 0.0, "k above n has no estimate");
}

fn attempt(task: &str, attempt: u32, passed: bool, expected: Option<Expected>) -> AttemptRecord {
    AttemptRecord {
        task_id: task.into(),
        attempt,
        passed,
        reason: (!passed).then(|| "check failed (exit 1)".to_owned()),
        turns: Some(2),
        tokens: Some(TokenCounts {
            prompt_tokens: 90,
            completion_tokens: 10,
            total_tokens: 100,
        }),
        agent_duration_ms: 1000,
        check_duration_ms: Some(50),
        expected,
        ..AttemptRecord::default()
    }
}

fn info(repeat: u32, expected_pass_rate: Option<f64>, filter: Option<&str>) -> RunInfo {
    RunInfo {
        suite: "unit".into(),
        model: "scripted".into(),
        scripted: true,
        started_at: "2025-01-01T00:00:00Z".into(),
        repeat,
        filter: filter.map(str::to_owned),
        expected_pass_rate,
        wall_time_ms: 1234,
    }
}

fn order(ids: &[(&str, Option<Expected>)]) -> Vec<(String, Vec<String>, Option<Expected>)> {
    ids.iter()
        .map(|(id, expected)| ((*id).to_owned(), vec![], *expected))
        .collect()
}

#[test]
fn build_groups_attempts_by_task_in_suite_order_and_sums_totals() {
    let records = vec![
        attempt("b", 2, false, None),
        attempt("a", 1, true, None),
        attempt("b", 1, true, None),
        attempt("a", 2, true, None),
    ];
    let report = Report::build(
        info(2, None, None),
        &order(&[("a", None), ("b", None)]),
        records,
    );
    assert_eq!(report.tasks[0].id, "a");
    assert_eq!(report.tasks[1].attempts[0].attempt, 1);
    assert_eq!(report.tasks[1].pass_rate, 0.5);
    let totals = &report.totals;
    assert_eq!((totals.tasks, totals.attempts, totals.passed), (2, 4, 3));
    assert_eq!(totals.pass_rate, 0.75);
    assert_eq!(totals.total_tokens, 400);
    assert_eq!(totals.prompt_tokens, 360);
    assert_eq!(totals.turns, 8);
    assert_eq!(totals.agent_time_ms, 4000);
    assert_eq!(totals.check_time_ms, 200);
    assert_eq!(totals.wall_time_ms, 1234);
    let table = totals.pass_at_k.as_ref().unwrap();
    // a: n=2 c=2; b: n=2 c=1. pass@1 = (1 + 0.5)/2, pass@2 = (1 + 1)/2.
    assert_eq!(table[&1], 0.75);
    assert_eq!(table[&2], 1.0);
    // The attempt the service's best-of-N would keep: b's only passing one.
    assert_eq!(report.tasks[0].best_attempt, Some(1));
    assert_eq!(report.tasks[1].best_attempt, Some(1));
}

#[test]
fn the_best_attempt_is_the_services_choice_passing_then_cheapest() {
    let mut cheap_fail = attempt("a", 1, false, None);
    cheap_fail.tokens = Some(TokenCounts {
        total_tokens: 10,
        ..TokenCounts::default()
    });
    let records = vec![
        cheap_fail,
        attempt("a", 2, true, None),
        attempt("a", 3, true, None),
    ];
    let report = Report::build(info(3, None, None), &order(&[("a", None)]), records);
    assert_eq!(report.tasks[0].best_attempt, Some(2));
    let single = Report::build(
        info(1, None, None),
        &order(&[("a", None)]),
        vec![attempt("a", 1, true, None)],
    );
    assert_eq!(single.tasks[0].best_attempt, None);
    assert!(!single.to_json().unwrap().contains("best_attempt"));
}

#[test]
fn single_attempt_runs_have_no_pass_at_k() {
    let report = Report::build(
        info(1, None, None),
        &order(&[("a", None)]),
        vec![attempt("a", 1, true, None)],
    );
    assert!(report.totals.pass_at_k.is_none());
    assert!(!report.to_json().unwrap().contains("pass_at_k"));
}

#[test]
fn report_survives_a_json_round_trip() {
    let report = Report::build(
        info(2, Some(0.5), None),
        &order(&[("a", Some(Expected::Pass))]),
        vec![
            attempt("a", 1, true, Some(Expected::Pass)),
            attempt("a", 2, false, Some(Expected::Pass)),
        ],
    );
    let json = report.to_json().unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn matching_expectations_give_no_mismatch() {
    let report = Report::build(
        info(1, Some(0.5), None),
        &order(&[("a", Some(Expected::Pass)), ("b", Some(Expected::Fail))]),
        vec![
            attempt("a", 1, true, Some(Expected::Pass)),
            attempt("b", 1, false, Some(Expected::Fail)),
        ],
    );
    assert!(report.expectation_mismatches().is_empty());
}

#[test]
fn outcome_and_rate_mismatches_are_listed() {
    let report = Report::build(
        info(1, Some(1.0), None),
        &order(&[("a", Some(Expected::Pass)), ("b", None)]),
        vec![
            attempt("a", 1, false, Some(Expected::Pass)),
            attempt("b", 1, true, None),
        ],
    );
    let mismatches = report.expectation_mismatches();
    assert_eq!(mismatches.len(), 2, "{mismatches:?}");
    assert!(
        mismatches[0].contains("task a attempt 1: expected pass, got fail (check failed"),
        "{mismatches:?}"
    );
    assert!(mismatches[1].contains("pass rate 0.5000"), "{mismatches:?}");
}

#[test]
fn rate_is_not_checked_when_a_filter_selected_the_tasks() {
    let report = Report::build(
        info(1, Some(1.0), Some("a")),
        &order(&[("a", None)]),
        vec![attempt("a", 1, false, None)],
    );
    assert!(report.expectation_mismatches().is_empty());
}
