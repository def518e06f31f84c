use super::*;
use crate::test_support::task;

const NOW: i64 = 10_000_000;

fn config() -> OrchestratorConfig {
    let mut config = OrchestratorConfig::default();
    config.worker.max_attempts = 3;
    config.reconciler.lost_after_secs = 60;
    config
}

fn seen(run: Option<Result<RunStatus, String>>) -> Observation {
    Observation { now: NOW, run }
}

/// A task in `status` at `attempt`, last updated `secs_ago` seconds before `NOW`.
fn claimed(status: TaskStatus, attempt: u32, secs_ago: i64) -> Task {
    let mut task = task(status, NOW - secs_ago * 1000);
    task.attempt = attempt;
    task.runner_ref = Some(crate::runner::run_name(task.id, attempt).0);
    task
}

fn exited(code: Option<i32>) -> RunStatus {
    RunStatus::Exited {
        code,
        reason: "it ended".to_string(),
    }
}

#[test]
fn abandoned_preparation_is_retried_under_a_new_attempt() {
    for status in [TaskStatus::Processing, TaskStatus::DownloadingCode] {
        let mut task = claimed(status, 1, 5);
        task.runner_ref = None;
        assert_eq!(
            decide(&task, &seen(None), &config()),
            Action::Retry,
            "{status}"
        );
        let task = claimed(status, 2, 5);
        assert_eq!(
            decide(&task, &seen(Some(Ok(RunStatus::NotFound))), &config()),
            Action::Retry,
            "a run named but never launched: {status}"
        );
    }
}

#[test]
fn preparation_abandoned_too_often_fails_saying_why() {
    let mut task = claimed(TaskStatus::DownloadingCode, 3, 5);
    task.runner_ref = None;
    let Action::Fail(message) = decide(&task, &seen(None), &config()) else {
        panic!("not failed")
    };
    assert!(message.contains("3 attempts"), "{message}");
    assert!(message.contains("before the agent started"), "{message}");
}

#[test]
fn a_run_launched_before_the_row_said_so_is_recorded_not_retried() {
    for run in [RunStatus::Pending, RunStatus::Running, exited(Some(0))] {
        let task = claimed(TaskStatus::DownloadingCode, 3, 5);
        assert_eq!(
            decide(&task, &seen(Some(Ok(run.clone()))), &config()),
            Action::RecordLaunch,
            "{run:?}"
        );
    }
}

#[test]
fn a_run_that_goes_on_is_adopted_not_failed() {
    for run in [RunStatus::Pending, RunStatus::Running] {
        let task = claimed(TaskStatus::RunningAgent, 1, 3600);
        assert_eq!(
            decide(&task, &seen(Some(Ok(run.clone()))), &config()),
            Action::Adopt,
            "{run:?}"
        );
    }
}

#[test]
fn a_run_that_exited_is_finished_with_its_exit() {
    let task = claimed(TaskStatus::UploadingResults, 1, 5);
    assert_eq!(
        decide(&task, &seen(Some(Ok(exited(Some(3))))), &config()),
        Action::Finish(RunEnd::Exited {
            code: Some(3),
            reason: "it ended".to_string()
        })
    );
}

#[test]
fn a_missing_run_counts_as_lost_only_after_the_grace() {
    let young = claimed(TaskStatus::RunningAgent, 1, 10);
    assert!(matches!(
        decide(&young, &seen(Some(Ok(RunStatus::NotFound))), &config()),
        Action::Later(_)
    ));
    let old = claimed(TaskStatus::RunningAgent, 1, 61);
    assert!(matches!(
        decide(&old, &seen(Some(Ok(RunStatus::NotFound))), &config()),
        Action::Finish(RunEnd::Lost(_))
    ));
}

#[test]
fn a_running_task_without_a_run_name_is_lost() {
    let mut task = claimed(TaskStatus::RunningAgent, 1, 5);
    task.runner_ref = None;
    assert!(matches!(
        decide(&task, &seen(None), &config()),
        Action::Finish(RunEnd::Lost(_))
    ));
}

#[test]
fn a_runner_that_cannot_answer_gets_asked_again_later() {
    for status in [TaskStatus::DownloadingCode, TaskStatus::RunningAgent] {
        let task = claimed(status, 1, 3600);
        assert!(matches!(
            decide(&task, &seen(Some(Err("timeout".into()))), &config()),
            Action::Later(_)
        ));
    }
}

#[test]
fn past_the_deadline_a_run_is_stopped_even_while_alive() {
    let mut task = claimed(TaskStatus::RunningAgent, 1, 5);
    task.deadline_at = Some(NOW - 1);
    assert_eq!(
        decide(&task, &seen(Some(Ok(RunStatus::Running))), &config()),
        Action::DeadlineExceeded
    );
    task.deadline_at = Some(NOW);
    assert_eq!(
        decide(&task, &seen(Some(Ok(RunStatus::Running))), &config()),
        Action::Adopt
    );
}

#[test]
fn unclaimed_statuses_are_not_this_functions_business() {
    for status in [
        TaskStatus::Queued,
        TaskStatus::Completed,
        TaskStatus::Cancelled,
    ] {
        let task = claimed(status, 1, 3600);
        assert!(matches!(
            decide(&task, &seen(Some(Ok(RunStatus::NotFound))), &config()),
            Action::Later(_)
        ));
    }
}
