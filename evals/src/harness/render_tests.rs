#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::harness::report::{RunInfo, TokenCounts};
use crate::harness::task::Expected;

fn report(repeat: u32) -> Report {
    let failed = AttemptRecord {
        task_id: "b<&>".into(),
        attempt: 1,
        passed: false,
        reason: Some("check failed (exit 1); agent said \"x|y\"\n".into()),
        agent_exit_code: Some(3),
        status: Some("limit_reached".into()),
        turns: Some(4),
        tokens: Some(TokenCounts {
            prompt_tokens: 10,
            completion_tokens: 2,
            total_tokens: 12,
        }),
        agent_duration_ms: 2500,
        output_dir: "tasks/b".into(),
        started_ms: 0,
        finished_ms: 3000,
        ..AttemptRecord::default()
    };
    let passed = AttemptRecord {
        task_id: "a".into(),
        attempt: 1,
        passed: true,
        turns: Some(1),
        ..AttemptRecord::default()
    };
    Report::build(
        RunInfo {
            suite: "unit".into(),
            model: "scripted".into(),
            scripted: true,
            started_at: "2025-01-01T00:00:00Z".into(),
            repeat,
            filter: None,
            expected_pass_rate: None,
            wall_time_ms: 4000,
        },
        &[("a".into(), vec![], None), ("b<&>".into(), vec![], None)],
        vec![passed, failed],
    )
}

#[test]
fn xml_escape_covers_markup_quotes_and_control_characters() {
    assert_eq!(
        xml_escape("a<b>&\"c\"'d'\n\u{1}"),
        "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;&#10;\u{FFFD}"
    );
}

#[test]
fn markdown_has_a_row_per_attempt_with_escaped_cells_and_totals() {
    let md = markdown(&report(1));
    assert!(md.contains("| a | ✅ |  | 1 | 0 | 0.0 s |"), "{md}");
    assert!(
        md.contains(
            "| b<&> | ❌ | check failed (exit 1); agent said \"x\\|y\"  | 4 | 12 | 2.5 s |"
        ),
        "{md}"
    );
    assert!(
        md.contains("passed: 1/2 attempts (50.0%) over 2 task(s)"),
        "{md}"
    );
    assert!(md.contains("tokens: 12 (10 prompt, 2 completion)"), "{md}");
}

#[test]
fn junit_has_a_testcase_per_attempt_and_an_escaped_failure_message() {
    let xml = junit(&report(1));
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(
        xml.contains("<testsuite name=\"unit\" tests=\"2\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase classname=\"unit\" name=\"a\" time=\"0.000\"/>"),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"b&lt;&amp;&gt;\" time=\"3.000\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"check failed (exit 1); agent said &quot;x|y&quot;&#10;\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase").count(), 2);
    assert_eq!(xml.matches("</testcase>").count(), 1);
}

#[test]
fn repeated_runs_name_attempts_in_every_view() {
    let report = report(2);
    // Each case's kept attempt (the service's best-of-N choice) is marked in report.md.
    let kept = report.tasks[0].best_attempt;
    let mark = if kept == Some(1) { " (kept)" } else { "" };
    assert!(markdown(&report).contains(&format!("| a #1{mark} |")));
    assert!(junit(&report).contains("name=\"a #1\""));
    assert!(summary(&report).contains("PASS a #1"));
}

#[test]
fn summary_lists_failures_with_reasons_and_the_totals() {
    let text = summary(&report(1));
    assert!(text.contains("PASS a\n"), "{text}");
    assert!(text.contains("FAIL b<&>: check failed (exit 1)"), "{text}");
    assert!(
        text.contains("unit: 1/2 passed (50.0%), 12 tokens"),
        "{text}"
    );
}

#[test]
fn summary_marks_failures_the_suite_expects_and_outcomes_it_does_not() {
    let mut report = report(1);
    let attempts: Vec<&mut AttemptRecord> = report
        .tasks
        .iter_mut()
        .flat_map(|task| task.attempts.iter_mut())
        .collect();
    let [pass, fail] = <[_; 2]>::try_from(attempts).ok().unwrap();
    pass.expected = Some(Expected::Fail);
    fail.expected = Some(Expected::Fail);
    let text = summary(&report);
    assert!(text.contains("PASS (unexpected) a\n"), "{text}");
    assert!(
        text.contains("FAIL (as expected) b<&>: check failed"),
        "{text}"
    );
}
