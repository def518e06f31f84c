//! Noticing a model that is going nowhere: answers with neither text nor a tool call, or
//! the same failing call again and again. Left alone, either loops until the turn limit
//! and burns its tokens; weaker and local models do both.
//!
//! The loop tells the model once or twice what it is doing (a "nudge": a user message),
//! and stops the run with status `stuck` if it carries on.

use crate::model::ToolCall;

/// Empty answers in a row that get a nudge; one more stops the run.
pub const EMPTY_ANSWER_NUDGES: u32 = 2;
/// The same failing call this many turns in a row gets a nudge...
pub const REPEAT_NUDGE_AT: u32 = 3;
/// ...and this many stops the run.
pub const REPEAT_STOP_AT: u32 = 5;

/// What the loop does after a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Tell the model this, then go on.
    Nudge {
        reason: &'static str,
        message: String,
    },
    /// End the run as stuck, for this reason.
    Stop(String),
}

/// The failing call being watched: name, arguments and how many turns in a row it failed.
#[derive(Debug, Default)]
struct RepeatedFailure {
    name: String,
    arguments: String,
    turns: u32,
}

#[derive(Debug, Default)]
pub struct ProgressGuard {
    empty_answers: u32,
    repeated: Option<RepeatedFailure>,
}

impl ProgressGuard {
    /// After an answer with no tool call: empty ones are counted, others reset the count.
    pub fn after_answer(&mut self, content_is_blank: bool) -> Verdict {
        if !content_is_blank {
            self.empty_answers = 0;
            return Verdict::Continue;
        }
        self.empty_answers += 1;
        if self.empty_answers > EMPTY_ANSWER_NUDGES {
            return Verdict::Stop(format!(
                "the model answered with neither text nor a tool call {} times in a row",
                self.empty_answers
            ));
        }
        Verdict::Nudge {
            reason: "empty_answer",
            message: "Your last reply was empty: no text and no tool call. Continue the task \
                      by calling a tool, or, if the task is done, reply with a short summary of \
                      what you changed."
                .to_string(),
        }
    }

    /// After a turn's tool calls ran: `results` pairs each call with whether it succeeded.
    pub fn after_tools<'a>(
        &mut self,
        results: impl IntoIterator<Item = (&'a ToolCall, bool)>,
    ) -> Verdict {
        self.empty_answers = 0;
        let failed: Vec<&ToolCall> = results
            .into_iter()
            .filter(|(_, success)| !success)
            .map(|(call, _)| call)
            .collect();
        let again = self.repeated.as_ref().is_some_and(|watched| {
            failed
                .iter()
                .any(|call| same_call(call, &watched.name, &watched.arguments))
        });
        if again {
            if let Some(watched) = self.repeated.as_mut() {
                watched.turns += 1;
            }
        } else {
            self.repeated = failed.first().map(|call| RepeatedFailure {
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                turns: 1,
            });
        }
        let Some(watched) = &self.repeated else {
            return Verdict::Continue;
        };
        if watched.turns >= REPEAT_STOP_AT {
            return Verdict::Stop(format!(
                "the model made the same failing call to `{}` {} turns in a row",
                watched.name, watched.turns
            ));
        }
        if watched.turns == REPEAT_NUDGE_AT {
            return Verdict::Nudge {
                reason: "repeated_failing_call",
                message: format!(
                    "The call to `{}` with these same arguments has now failed {} times in a \
                     row. Repeating it will fail again. Read its error message, then change the \
                     arguments or take another approach.",
                    watched.name, watched.turns
                ),
            };
        }
        Verdict::Continue
    }
}

/// Same tool and same arguments, whitespace and key order aside.
fn same_call(call: &ToolCall, name: &str, arguments: &str) -> bool {
    if call.name != name {
        return false;
    }
    if call.arguments == arguments {
        return true;
    }
    match (
        serde_json::from_str::<serde_json::Value>(&call.arguments),
        serde_json::from_str::<serde_json::Value>(arguments),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn empty_answers_are_nudged_twice_then_stop_and_text_resets_the_count() {
        let mut guard = ProgressGuard::default();
        assert!(matches!(
            guard.after_answer(true),
            Verdict::Nudge {
                reason: "empty_answer",
                ..
            }
        ));
        assert!(matches!(guard.after_answer(true), Verdict::Nudge { .. }));
        assert!(
            matches!(guard.after_answer(true), Verdict::Stop(message) if message.contains("3 times"))
        );

        let mut guard = ProgressGuard::default();
        guard.after_answer(true);
        guard.after_answer(true);
        assert_eq!(guard.after_answer(false), Verdict::Continue);
        assert!(matches!(guard.after_answer(true), Verdict::Nudge { .. }));
    }

    #[test]
    fn the_same_failing_call_is_nudged_at_three_and_stopped_at_five() {
        let mut guard = ProgressGuard::default();
        let failing = call("edit", r#"{"a": 1, "b": 2}"#);
        // Key order and spacing do not make a call different.
        let same = call("edit", r#"{"b":2,"a":1}"#);
        let ok = call("read", "{}");
        assert_eq!(
            guard.after_tools([(&failing, false), (&ok, true)]),
            Verdict::Continue
        );
        assert_eq!(guard.after_tools([(&same, false)]), Verdict::Continue);
        assert!(matches!(
            guard.after_tools([(&ok, true), (&failing, false)]),
            Verdict::Nudge {
                reason: "repeated_failing_call",
                ..
            }
        ));
        assert_eq!(guard.after_tools([(&failing, false)]), Verdict::Continue);
        assert!(
            matches!(guard.after_tools([(&failing, false)]), Verdict::Stop(m) if m.contains("`edit` 5 turns"))
        );
    }

    #[test]
    fn a_different_call_or_a_success_starts_the_count_again() {
        let mut guard = ProgressGuard::default();
        let failing = call("edit", "{}");
        let other = call("edit", r#"{"x":1}"#);
        guard.after_tools([(&failing, false)]);
        guard.after_tools([(&failing, false)]);
        assert_eq!(guard.after_tools([(&other, false)]), Verdict::Continue);
        assert_eq!(guard.after_tools([(&failing, false)]), Verdict::Continue);
        assert_eq!(guard.after_tools([(&failing, true)]), Verdict::Continue);
        assert_eq!(guard.after_tools([(&failing, false)]), Verdict::Continue);
        assert_eq!(guard.after_tools([(&failing, false)]), Verdict::Continue);
    }
}
