use std::time::Duration;

use super::RetryPolicy;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        max_elapsed: Duration::from_secs(60),
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
    }
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn backoff_doubles_each_retry_between_half_and_full_step() {
    let p = policy();
    let zero = Duration::ZERO;
    assert_eq!(p.wait_before(1, None, zero, 0.0), Some(ms(500)));
    assert_eq!(p.wait_before(2, None, zero, 0.0), Some(ms(1000)));
    assert_eq!(p.wait_before(3, None, zero, 0.0), Some(ms(2000)));
    assert_eq!(p.wait_before(3, None, zero, 0.5), Some(ms(3000)));
    let high = p.wait_before(3, None, zero, 0.999).unwrap();
    assert!(high < ms(4000) && high > ms(3990), "{high:?}");
}

#[test]
fn backoff_step_is_capped_at_max_delay() {
    let p = RetryPolicy {
        max_retries: 30,
        ..policy()
    };
    assert_eq!(
        p.wait_before(30, None, Duration::ZERO, 0.0),
        Some(Duration::from_secs(4))
    );
}

#[test]
fn retry_after_is_used_as_given_without_jitter() {
    let p = policy();
    let hint = Some(Duration::from_secs(1));
    assert_eq!(
        p.wait_before(1, hint, Duration::ZERO, 0.9),
        Some(Duration::from_secs(1))
    );
    // Longer than a backoff step would be: the server's word wins.
    assert_eq!(
        p.wait_before(1, Some(Duration::from_secs(20)), Duration::ZERO, 0.0),
        Some(Duration::from_secs(20))
    );
}

#[test]
fn absurd_retry_after_is_capped_at_the_elapsed_budget() {
    let p = policy();
    assert_eq!(
        p.wait_before(1, Some(Duration::from_secs(86_400)), Duration::ZERO, 0.0),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn no_retry_beyond_max_retries() {
    let p = policy();
    assert!(p.wait_before(5, None, Duration::ZERO, 0.0).is_some());
    assert_eq!(p.wait_before(6, None, Duration::ZERO, 0.0), None);
}

#[test]
fn zero_max_retries_never_retries() {
    let p = RetryPolicy {
        max_retries: 0,
        ..policy()
    };
    assert_eq!(p.wait_before(1, None, Duration::ZERO, 0.0), None);
}

#[test]
fn wait_is_cut_to_the_remaining_budget() {
    let p = policy();
    assert_eq!(
        p.wait_before(
            1,
            Some(Duration::from_secs(30)),
            Duration::from_secs(50),
            0.0
        ),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn no_retry_once_the_elapsed_budget_is_spent() {
    let p = policy();
    assert_eq!(p.wait_before(1, None, Duration::from_secs(60), 0.0), None);
    assert_eq!(p.wait_before(1, None, Duration::from_secs(61), 0.0), None);
}
