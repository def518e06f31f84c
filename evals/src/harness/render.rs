//! The human and CI faces of a [`Report`]: `report.md` (a table to read or paste in a
//! pull request), `junit.xml` (one test case per attempt, which CI systems display), and
//! the few lines printed at the end of a run.

use std::fmt::Write;

use super::report::{AttemptRecord, Report};

/// `report.md`.
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Eval report: {}\n", md_cell(&report.suite));
    let _ = writeln!(
        md,
        "Model `{}`{}, started {}, {} attempt(s) per task{}.\n",
        report.model.replace('`', "'"),
        if report.scripted { " (scripted)" } else { "" },
        report.started_at,
        report.repeat,
        report
            .filter
            .as_deref()
            .map(|filter| format!(", filter `{}`", filter.replace('`', "'")))
            .unwrap_or_default(),
    );
    md.push_str("| task | result | reason | turns | tokens | time |\n");
    md.push_str("| --- | --- | --- | ---: | ---: | ---: |\n");
    // With repeats, the attempt the service's best-of-N would keep is marked.
    let attempts = report.tasks.iter().flat_map(|task| {
        task.attempts
            .iter()
            .map(move |record| (record, task.best_attempt == Some(record.attempt)))
    });
    for (record, kept) in attempts {
        let name = if report.repeat > 1 {
            let mark = if kept { " (kept)" } else { "" };
            format!("{} #{}{mark}", record.task_id, record.attempt)
        } else {
            record.task_id.clone()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            md_cell(&name),
            if record.passed { "✅" } else { "❌" },
            md_cell(record.reason.as_deref().unwrap_or("")),
            record.turns.map(|t| t.to_string()).unwrap_or_default(),
            record.total_tokens(),
            seconds(record.agent_duration_ms),
        );
    }
    let totals = &report.totals;
    let _ = writeln!(md, "\n## Totals\n");
    let _ = writeln!(
        md,
        "- passed: {}/{} attempts ({:.1}%) over {} task(s)",
        totals.passed,
        totals.attempts,
        totals.pass_rate * 100.0,
        totals.tasks
    );
    if let Some(table) = &totals.pass_at_k {
        let parts: Vec<String> = table
            .iter()
            .map(|(k, value)| format!("pass@{k} {value:.3}"))
            .collect();
        let _ = writeln!(md, "- {}", parts.join(", "));
    }
    let _ = writeln!(
        md,
        "- tokens: {} ({} prompt, {} completion)",
        totals.total_tokens, totals.prompt_tokens, totals.completion_tokens
    );
    let _ = writeln!(md, "- turns: {}", totals.turns);
    let _ = writeln!(
        md,
        "- time: agent {}, checks {}, wall {}",
        seconds(totals.agent_time_ms),
        seconds(totals.check_time_ms),
        seconds(totals.wall_time_ms)
    );
    md
}

/// `junit.xml`: a `testsuite` for the suite, a `testcase` per attempt.
pub fn junit(report: &Report) -> String {
    let attempts: Vec<&AttemptRecord> = report
        .tasks
        .iter()
        .flat_map(|task| &task.attempts)
        .collect();
    let failures = attempts.iter().filter(|record| !record.passed).count();
    let time = junit_seconds(report.totals.wall_time_ms);
    let suite = xml_escape(&report.suite);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"evals\" tests=\"{}\" failures=\"{failures}\" time=\"{time}\">",
        attempts.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time}\" timestamp=\"{}\">",
        attempts.len(),
        xml_escape(&report.started_at)
    );
    for record in attempts {
        let name = if report.repeat > 1 {
            format!("{} #{}", record.task_id, record.attempt)
        } else {
            record.task_id.clone()
        };
        let _ = write!(
            xml,
            "    <testcase classname=\"{suite}\" name=\"{}\" time=\"{}\"",
            xml_escape(&name),
            junit_seconds(record.finished_ms.saturating_sub(record.started_ms))
        );
        if record.passed {
            xml.push_str("/>\n");
            continue;
        }
        let reason = record.reason.as_deref().unwrap_or("failed");
        let details = format!(
            "{reason}\nagent exit code: {}\nstatus: {}\nturns: {}\ntokens: {}\noutputs: {}",
            optional(record.agent_exit_code),
            record.status.as_deref().unwrap_or("-"),
            optional(record.turns),
            record.total_tokens(),
            record.output_dir
        );
        let _ = writeln!(
            xml,
            ">\n      <failure message=\"{}\" type=\"eval-failure\">{}</failure>\n    </testcase>",
            xml_escape(reason),
            xml_escape(&details)
        );
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// The lines printed on stderr when a run ends.
pub fn summary(report: &Report) -> String {
    let totals = &report.totals;
    let mut text = String::new();
    for record in report.tasks.iter().flat_map(|task| &task.attempts) {
        let _ = writeln!(
            text,
            "{}{} {}{}{}",
            if record.passed { "PASS" } else { "FAIL" },
            match record.expected {
                Some(expected) if expected.is_pass() != record.passed => " (unexpected)",
                Some(_) if !record.passed => " (as expected)",
                _ => "",
            },
            record.task_id,
            if report.repeat > 1 {
                format!(" #{}", record.attempt)
            } else {
                String::new()
            },
            record
                .reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        );
    }
    let _ = write!(
        text,
        "{}: {}/{} passed ({:.1}%), {} tokens, wall {}",
        report.suite,
        totals.passed,
        totals.attempts,
        totals.pass_rate * 100.0,
        totals.total_tokens,
        seconds(totals.wall_time_ms)
    );
    if let Some(table) = &totals.pass_at_k
        && let Some((k, value)) = table.iter().next_back()
    {
        let _ = write!(text, ", pass@{k} {value:.3}");
    }
    text.push('\n');
    text
}

/// Escapes text for XML attributes and content; characters XML 1.0 cannot carry at all
/// (most control characters) become U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A Markdown table cell: pipes escaped, one line.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn junit_seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
