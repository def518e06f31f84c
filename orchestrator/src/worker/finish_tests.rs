use serde_json::json;

use super::*;

fn failed(message: &str) -> Outcome {
    Outcome::failed(message)
}

#[test]
fn exit_zero_with_a_completed_result_completes() {
    let result = json!({"status": "completed", "turns": 4});
    assert_eq!(
        outcome(RunEnd::Exited(Some(0)), Some(&result)),
        Outcome::completed("the agent finished in 4 turns")
    );
}

#[test]
fn exit_zero_without_a_result_still_completes_and_says_so() {
    let got = outcome(RunEnd::Exited(Some(0)), None);
    assert_eq!(got.status, TaskStatus::Completed);
    assert!(got.message.contains("no result.json"), "{got:?}");
}

#[test]
fn limit_reached_names_the_limit() {
    let result = json!({"status": "limit_reached", "limit": "max_turns"});
    assert_eq!(
        outcome(RunEnd::Exited(Some(3)), Some(&result)),
        failed("the agent stopped: max_turns limit reached")
    );
}

#[test]
fn model_error_carries_the_agents_error_text() {
    let result = json!({"status": "model_error", "error": "connection refused"});
    assert_eq!(
        outcome(RunEnd::Exited(Some(4)), Some(&result)),
        failed("the model failed: connection refused")
    );
}

#[test]
fn other_errors_carry_the_error_text() {
    let result = json!({"status": "error", "error": "disk full"});
    assert_eq!(
        outcome(RunEnd::Exited(Some(1)), Some(&result)),
        failed("the agent failed: disk full")
    );
}

#[test]
fn a_nonzero_exit_without_result_names_the_code() {
    assert_eq!(
        outcome(RunEnd::Exited(Some(2)), None),
        failed("the agent exited with code 2 (bad input)")
    );
    assert_eq!(
        outcome(RunEnd::Exited(Some(137)), None),
        failed("the agent exited with code 137 (error)")
    );
}

#[test]
fn a_nonzero_exit_beats_a_result_claiming_completion() {
    let result = json!({"status": "completed"});
    assert_eq!(
        outcome(RunEnd::Exited(Some(1)), Some(&result)),
        failed("the agent exited with code 1 (error)")
    );
}

#[test]
fn a_killed_agent_fails_unless_it_had_already_completed() {
    assert_eq!(
        outcome(RunEnd::Exited(None), None),
        failed("the agent process was killed")
    );
    let result = json!({"status": "completed"});
    assert_eq!(
        outcome(RunEnd::Exited(None), Some(&result)).status,
        TaskStatus::Completed
    );
}

#[test]
fn a_lost_run_is_finished_from_its_result_or_failed() {
    assert_eq!(
        outcome(RunEnd::Lost, None),
        failed("agent process lost (server restarted?)")
    );
    let done = json!({"status": "completed", "turns": 2});
    assert_eq!(
        outcome(RunEnd::Lost, Some(&done)).status,
        TaskStatus::Completed
    );
    let limit = json!({"status": "limit_reached", "limit": "timeout"});
    assert_eq!(
        outcome(RunEnd::Lost, Some(&limit)),
        failed("the agent stopped: timeout limit reached")
    );
}

#[test]
fn outputs_live_under_the_task() {
    let id = TaskId::new();
    assert_eq!(
        output_key(id, "result.json"),
        format!("tasks/{id}/outputs/result.json")
    );
}
