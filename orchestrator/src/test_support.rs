//! Fixtures shared by the unit tests.

use crate::task::{InputSource, Task, TaskId, TaskLimits, TaskStatus};

/// A git task in `status`, created and last updated at `updated_at` (ms).
pub fn task(status: TaskStatus, updated_at: i64) -> Task {
    Task {
        id: TaskId::new(),
        owner: "alice".to_string(),
        input: InputSource::Git {
            git_url: "https://example.com/repo.git".to_string(),
            git_ref: None,
        },
        description: "fix the failing test".to_string(),
        target_file: None,
        model: None,
        limits: TaskLimits::default(),
        status,
        message: None,
        pr_url: None,
        attempt: 0,
        result: None,
        runner_ref: None,
        idempotency_key: None,
        created_at: updated_at,
        updated_at,
        deadline_at: None,
        lease_holder: None,
        lease_expires_at: None,
        run_number: 1,
        follow_up: None,
        best_of: Default::default(),
        chosen_run: None,
        setup: None,
    }
}
