use serde_json::json;

use super::*;

fn failed(message: &str) -> Outcome {
    Outcome::failed(message)
}

fn exit(code: i32) -> RunEnd {
    RunEnd::Exited {
        code: Some(code),
        reason: format!("the agent exited with code {code}"),
    }
}

fn killed() -> RunEnd {
    RunEnd::Exited {
        code: None,
        reason: "the agent was killed by signal 9".to_string(),
    }
}

fn lost() -> RunEnd {
    RunEnd::Lost("its run is gone".to_string())
}

#[test]
fn exit_zero_with_a_completed_result_completes() {
    let result = json!({"status": "completed", "turns": 4});
    assert_eq!(
        outcome(&exit(0), Some(&result)),
        Outcome::completed("the agent finished in 4 turns")
    );
}

#[test]
fn exit_zero_without_a_result_still_completes_and_says_so() {
    let got = outcome(&exit(0), None);
    assert_eq!(got.status, TaskStatus::Completed);
    assert!(got.message.contains("no result.json"), "{got:?}");
}

#[test]
fn limit_reached_names_the_limit() {
    let result = json!({"status": "limit_reached", "limit": "max_turns"});
    assert_eq!(
        outcome(&exit(3), Some(&result)),
        failed("the agent stopped: max_turns limit reached")
    );
}

#[test]
fn model_error_carries_the_agents_error_text() {
    let result = json!({"status": "model_error", "error": "connection refused"});
    assert_eq!(
        outcome(&exit(4), Some(&result)),
        failed("the model failed: connection refused")
    );
}

#[test]
fn other_errors_carry_the_error_text() {
    let result = json!({"status": "error", "error": "disk full"});
    assert_eq!(
        outcome(&exit(1), Some(&result)),
        failed("the agent failed: disk full")
    );
}

#[test]
fn a_nonzero_exit_without_result_names_the_code() {
    assert_eq!(
        outcome(&exit(2), None),
        failed("the agent exited with code 2 (bad input)")
    );
    assert_eq!(
        outcome(&exit(137), None),
        failed("the agent exited with code 137 (error)")
    );
}

#[test]
fn an_unreachable_object_store_is_told_apart_from_bad_input() {
    assert_eq!(
        outcome(&exit(5), None),
        failed(
            "the agent exited with code 5 (infrastructure failure: the object store stayed \
             unreachable for the download)"
        )
    );
    assert_eq!(reason(&exit(5), None), "infrastructure");
    assert_eq!(reason(&exit(2), None), "agent_error");
}

#[test]
fn a_nonzero_exit_beats_a_result_claiming_completion() {
    let result = json!({"status": "completed"});
    assert_eq!(
        outcome(&exit(1), Some(&result)),
        failed("the agent exited with code 1 (error)")
    );
}

#[test]
fn a_killed_agent_fails_unless_it_had_already_completed() {
    assert_eq!(
        outcome(&killed(), None),
        failed("the agent process was killed (the agent was killed by signal 9)")
    );
    let result = json!({"status": "completed"});
    assert_eq!(
        outcome(&killed(), Some(&result)).status,
        TaskStatus::Completed
    );
}

#[test]
fn a_lost_run_is_finished_from_its_result_or_failed() {
    assert_eq!(
        outcome(&lost(), None),
        failed("agent process lost: its run is gone")
    );
    let done = json!({"status": "completed", "turns": 2});
    assert_eq!(outcome(&lost(), Some(&done)).status, TaskStatus::Completed);
    let limit = json!({"status": "limit_reached", "limit": "timeout"});
    assert_eq!(
        outcome(&lost(), Some(&limit)),
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

#[test]
fn a_run_past_its_deadline_fails_whatever_its_result_says() {
    let result = json!({"status": "completed"});
    assert_eq!(
        outcome(&RunEnd::DeadlineExceeded, Some(&result)),
        failed("deadline exceeded: the task ran past its time limit")
    );
}
