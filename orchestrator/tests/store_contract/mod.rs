//! The contract every [`TaskStore`] keeps, as one suite run against each implementation
//! (SQLite here; the MySQL store runs the same suite).
//!
//! A test file for an implementation includes this module and invokes
//! `store_contract_tests!(make_fixture)`, where `make_fixture` is an `async fn() ->
//! Fixture`. Each check makes its own owner, so the suite also runs against a shared
//! database (MySQL) where other tests' rows are present.

mod accounting;
mod best_of;
mod creating;
mod follow_ups;
mod leases;
mod pull_requests;
mod queries;
mod transitions;

use std::any::Any;
use std::sync::Arc;

use orchestrator::store::Created;
use orchestrator::{
    InputSource, NewTask, Task, TaskId, TaskLimits, TaskStatus, TaskStore, TaskUpdate,
};

pub use accounting::*;
pub use best_of::*;
pub use creating::*;
pub use follow_ups::*;
pub use leases::*;
pub use pull_requests::*;
pub use queries::*;
pub use transitions::*;

/// A store under test and whatever must live as long as it (a temporary folder).
pub struct Fixture {
    pub store: Arc<dyn TaskStore>,
    pub _keep: Box<dyn Any + Send>,
}

/// Generates one `#[tokio::test]` per contract check, each on a fresh fixture.
macro_rules! store_contract_tests {
    ($make:path) => {
        store_contract_tests!(@each $make;
            create_then_get_returns_every_field,
            get_of_unknown_id_is_none,
            same_idempotency_key_returns_the_first_task,
            same_key_for_another_owner_makes_a_second_task,
            creates_without_a_key_are_never_merged,
            concurrent_creates_with_one_key_make_one_task,
            concurrent_transitions_from_one_status_have_one_winner,
            transition_applies_its_update_with_the_move,
            transition_from_a_status_the_task_left_is_a_conflict,
            terminal_states_are_final,
            backward_moves_are_refused_and_change_nothing,
            transition_of_unknown_task_is_not_found,
            list_pages_newest_first_without_gaps_or_repeats,
            list_filters_by_status,
            list_shows_only_the_owners_tasks,
            list_caps_the_page_size_and_defaults_an_unset_one,
            list_refuses_a_cursor_it_did_not_hand_out,
            tokens_map_their_hash_to_one_owner,
            claim_takes_a_queued_task_under_a_lease_from_the_stores_clock,
            concurrent_claims_have_one_winner,
            a_held_task_cannot_be_claimed_or_taken_over,
            renew_extends_the_lease_of_its_holder_only,
            fenced_writes_need_the_lease_and_end_it_on_a_terminal_status,
            a_cancel_wins_over_the_lease,
            an_expired_lease_is_taken_over_and_its_old_holder_fenced_out,
            an_abandoned_preparation_is_claimed_again_under_the_next_attempt,
            release_lets_anyone_take_the_task_at_once,
            each_repair_query_finds_only_its_own_kind,
            repair_queries_are_bounded_and_oldest_first,
            a_resent_queued_task_leaves_the_queued_repair_for_a_period,
            a_new_task_has_an_outbox_entry_until_it_is_sent,
            older_than_zero_includes_the_current_millisecond,
            tokens_are_listed_by_id_and_a_revoked_one_is_refused,
            live_tasks_counts_an_owners_unfinished_tasks_only,
            count_live_groups_unfinished_tasks_by_status,
            finished_tasks_are_due_for_purging_until_marked,
            a_pull_request_is_stored_with_its_task_and_opened_once,
            a_failed_pull_request_keeps_its_token_and_may_be_asked_for_again,
            an_abandoned_opening_is_claimed_again_once_stale,
            a_follow_up_archives_the_run_and_queues_the_next,
            only_a_completed_or_failed_task_takes_a_follow_up,
            a_best_of_task_keeps_its_attempts_and_check,
            an_ended_attempt_is_recorded_and_the_next_queued,
            the_last_attempt_names_the_chosen_one_and_a_redo_replaces_its_record,
            ending_an_attempt_needs_the_lease_and_the_status,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                store_contract::$name($make().await).await;
            }
        )*
    };
}
pub(crate) use store_contract_tests;

pub fn unique_owner() -> String {
    format!("owner-{}", TaskId::new())
}

pub fn git_task(owner: &str) -> NewTask {
    NewTask {
        owner: owner.to_string(),
        input: InputSource::Git {
            git_url: "https://example.com/repo.git".into(),
            git_ref: None,
        },
        description: "fix the bug".into(),
        target_file: None,
        model: None,
        limits: TaskLimits::default(),
        idempotency_key: None,
        pull_request: None,
        best_of: Default::default(),
        setup: None,
    }
}

pub fn keyed(owner: &str, key: &str) -> NewTask {
    NewTask {
        idempotency_key: Some(key.to_string()),
        ..git_task(owner)
    }
}

pub async fn create(store: &dyn TaskStore, new: NewTask) -> Task {
    let (task, created) = store.create(new).await.unwrap();
    assert_eq!(created, Created::New);
    task
}

/// Walks a task along `path` (its current status first).
pub async fn walk(store: &dyn TaskStore, id: TaskId, path: &[TaskStatus]) -> Task {
    let mut task = store.get(id).await.unwrap().unwrap();
    for pair in path.windows(2) {
        task = store
            .transition(id, pair[0], pair[1], TaskUpdate::default())
            .await
            .unwrap();
    }
    task
}

pub fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|task| task.id).collect()
}
