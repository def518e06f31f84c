//! `evals compare BASE NEW`: what changed between two runs of a suite, and whether the
//! change is a regression CI should fail on.
//!
//! Tasks are matched by id. With `--repeat`, a task's outcome is its pass rate, so
//! "better" means a higher rate (`fail→pass` for single attempts).

use std::fmt::Write;

use super::report::{Report, TaskReport};

/// One task whose pass rate moved.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskChange {
    pub id: String,
    pub base_rate: f64,
    pub new_rate: f64,
}

impl TaskChange {
    fn describe(&self) -> String {
        let label = |rate: f64| {
            if rate >= 1.0 {
                "pass".to_owned()
            } else if rate <= 0.0 {
                "fail".to_owned()
            } else {
                format!("{rate:.2}")
            }
        };
        format!(
            "{}: {}→{}",
            self.id,
            label(self.base_rate),
            label(self.new_rate)
        )
    }
}

/// The difference between two reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub better: Vec<TaskChange>,
    pub worse: Vec<TaskChange>,
    /// Ids only in the new report.
    pub added: Vec<String>,
    /// Ids only in the base report.
    pub removed: Vec<String>,
    pub base_pass_rate: f64,
    pub new_pass_rate: f64,
    base: Figures,
    new: Figures,
}

/// Per-attempt means, so runs with different `--repeat` compare fairly.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    tokens: f64,
    turns: f64,
    agent_ms: f64,
}

impl Figures {
    fn of(report: &Report) -> Self {
        let attempts = f64::from(report.totals.attempts.max(1));
        Self {
            tokens: report.totals.total_tokens as f64 / attempts,
            turns: report.totals.turns as f64 / attempts,
            agent_ms: report.totals.agent_time_ms as f64 / attempts,
        }
    }
}

impl Comparison {
    pub fn new(base: &Report, new: &Report) -> Self {
        let find = |report: &Report, id: &str| -> Option<f64> {
            report
                .tasks
                .iter()
                .find(|task| task.id == id)
                .map(|task: &TaskReport| task.pass_rate)
        };
        let mut better = Vec::new();
        let mut worse = Vec::new();
        let mut removed = Vec::new();
        for task in &base.tasks {
            match find(new, &task.id) {
                None => removed.push(task.id.clone()),
                Some(new_rate) => {
                    let change = TaskChange {
                        id: task.id.clone(),
                        base_rate: task.pass_rate,
                        new_rate,
                    };
                    if new_rate > task.pass_rate {
                        better.push(change);
                    } else if new_rate < task.pass_rate {
                        worse.push(change);
                    }
                }
            }
        }
        let added = new
            .tasks
            .iter()
            .filter(|task| find(base, &task.id).is_none())
            .map(|task| task.id.clone())
            .collect();
        Self {
            better,
            worse,
            added,
            removed,
            base_pass_rate: base.totals.pass_rate,
            new_pass_rate: new.totals.pass_rate,
            base: Figures::of(base),
            new: Figures::of(new),
        }
    }

    /// The pass rate fell by more than `threshold`, or (`strict`) any task got worse.
    pub fn regressed(&self, threshold: f64, strict: bool) -> bool {
        self.base_pass_rate - self.new_pass_rate > threshold || (strict && !self.worse.is_empty())
    }

    /// The text `evals compare` prints.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let list = |text: &mut String, title: &str, items: Vec<String>| {
            if !items.is_empty() {
                let _ = writeln!(text, "{title} ({}):", items.len());
                for item in items {
                    let _ = writeln!(text, "  {item}");
                }
            }
        };
        list(
            &mut text,
            "better",
            self.better.iter().map(TaskChange::describe).collect(),
        );
        list(
            &mut text,
            "worse",
            self.worse.iter().map(TaskChange::describe).collect(),
        );
        list(&mut text, "only in new", self.added.clone());
        list(&mut text, "only in base", self.removed.clone());
        if self.better.is_empty() && self.worse.is_empty() {
            text.push_str("no task changed outcome\n");
        }
        let _ = writeln!(
            text,
            "pass rate: {:.1}% → {:.1}% ({:+.1} points)",
            self.base_pass_rate * 100.0,
            self.new_pass_rate * 100.0,
            (self.new_pass_rate - self.base_pass_rate) * 100.0
        );
        for (name, base, new, unit) in [
            ("tokens per attempt", self.base.tokens, self.new.tokens, ""),
            ("turns per attempt", self.base.turns, self.new.turns, ""),
            (
                "agent time per attempt",
                self.base.agent_ms / 1000.0,
                self.new.agent_ms / 1000.0,
                " s",
            ),
        ] {
            let _ = writeln!(
                text,
                "{name}: {base:.1}{unit} → {new:.1}{unit} ({:+.1}{unit}{})",
                new - base,
                percent(base, new)
            );
        }
        text
    }
}

fn percent(base: f64, new: f64) -> String {
    if base == 0.0 {
        String::new()
    } else {
        format!(", {:+.1}%", (new - base) / base * 100.0)
    }
}
