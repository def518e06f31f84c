use super::*;
use crate::test_support::task;

const NOW: i64 = 10_000_000;

fn config() -> ReconcilerConfig {
    ReconcilerConfig {
        pending_after_secs: 30,
        queued_after_secs: 300,
        lost_after_secs: 60,
        prepare_timeout_secs: 900,
        ..ReconcilerConfig::default()
    }
}

fn seen(alive: Option<bool>) -> Observation {
    Observation {
        now: NOW,
        alive,
        last_requeue: None,
    }
}

/// A task in `status`, last updated `secs_ago` seconds before `NOW`.
fn aged(status: TaskStatus, secs_ago: i64) -> Task {
    task(status, NOW - secs_ago * 1000)
}

fn running(secs_ago: i64) -> Task {
    let mut task = aged(TaskStatus::RunningAgent, secs_ago);
    task.runner_ref = Some(format!("pid:4242:{}", task.id));
    task
}

#[test]
fn fresh_tasks_are_left_alone() {
    for status in LIVE {
        let task = aged(status, 1);
        assert_eq!(
            decide(&task, &seen(Some(false)), &config()),
            Action::Wait,
            "{status}"
        );
    }
}

#[test]
fn terminal_tasks_are_never_touched() {
    for status in [
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ] {
        let mut task = aged(status, 100_000);
        task.deadline_at = Some(NOW - 1);
        assert_eq!(decide(&task, &seen(Some(false)), &config()), Action::Wait);
    }
}

#[test]
fn a_pending_task_the_api_never_enqueued_is_enqueued() {
    assert_eq!(
        decide(&aged(TaskStatus::Pending, 29), &seen(None), &config()),
        Action::Wait
    );
    assert_eq!(
        decide(&aged(TaskStatus::Pending, 30), &seen(None), &config()),
        Action::Enqueue
    );
}

#[test]
fn a_long_queued_task_is_enqueued_again() {
    let task = aged(TaskStatus::Queued, 301);
    assert_eq!(
        decide(&aged(TaskStatus::Queued, 299), &seen(None), &config()),
        Action::Wait
    );
    assert_eq!(decide(&task, &seen(None), &config()), Action::Requeue);
}

#[test]
fn a_recently_requeued_task_is_not_flooded_with_duplicates() {
    let task = aged(TaskStatus::Queued, 3600);
    let mut observed = seen(None);
    observed.last_requeue = Some(NOW - 10_000);
    assert_eq!(decide(&task, &observed, &config()), Action::Wait);
    observed.last_requeue = Some(NOW - 300_000);
    assert_eq!(decide(&task, &observed, &config()), Action::Requeue);
}

#[test]
fn abandoned_preparation_fails_after_the_prepare_timeout() {
    for status in [TaskStatus::Processing, TaskStatus::DownloadingCode] {
        assert_eq!(
            decide(&aged(status, 899), &seen(None), &config()),
            Action::Wait
        );
        assert_eq!(
            decide(&aged(status, 900), &seen(None), &config()),
            Action::Fail(PREPARE_ABANDONED.to_string())
        );
    }
}

#[test]
fn a_running_task_whose_process_is_gone_is_finished_as_lost() {
    assert_eq!(
        decide(&running(61), &seen(Some(false)), &config()),
        Action::FinishLost
    );
    let mut uploading = running(61);
    uploading.status = TaskStatus::UploadingResults;
    assert_eq!(
        decide(&uploading, &seen(Some(false)), &config()),
        Action::FinishLost
    );
}

#[test]
fn a_dead_run_is_given_the_lost_threshold_before_it_counts_as_lost() {
    // The worker moves the row right after the process exits; give it that time.
    assert_eq!(
        decide(&running(59), &seen(Some(false)), &config()),
        Action::Wait
    );
}

#[test]
fn a_live_run_or_one_the_runner_cannot_judge_is_left_running() {
    assert_eq!(
        decide(&running(10_000), &seen(Some(true)), &config()),
        Action::Wait
    );
    assert_eq!(
        decide(&running(10_000), &seen(None), &config()),
        Action::Wait
    );
}

#[test]
fn a_running_task_without_a_handle_is_lost() {
    let mut task = running(61);
    task.runner_ref = None;
    assert_eq!(decide(&task, &seen(None), &config()), Action::FinishLost);
}

#[test]
fn past_the_deadline_a_task_fails_even_while_alive() {
    let mut task = running(1);
    task.deadline_at = Some(NOW - 1);
    assert_eq!(
        decide(&task, &seen(Some(true)), &config()),
        Action::DeadlineExceeded
    );
    task.deadline_at = Some(NOW);
    assert_eq!(decide(&task, &seen(Some(true)), &config()), Action::Wait);
}
