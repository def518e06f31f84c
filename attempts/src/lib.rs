//! Best-of-N: several independent attempts at one task, which one is kept, and pass@k.
//!
//! The service runs a task's attempts one after the other, each from the same starting
//! code, and keeps the best one's diff; the eval harness runs each case `--repeat` times
//! and reports pass@k. Both call the same functions here, so "passed", "best" and pass@k
//! mean one thing wherever they are shown.
//!
//! An attempt passes when its check passed (the repository's tests, run in the
//! attempt's final workspace); without a check, when the agent completed. The best
//! attempt is the first in [`rank`]'s order: passing ones first, then completed ones,
//! then ones that changed something, then the cheapest (fewest tokens), then the
//! earliest.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// What ranking needs to know of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Candidate {
    /// The attempt's number, from 1.
    pub number: u32,
    /// The agent finished its work (not a limit, not an error).
    pub completed: bool,
    /// The check's verdict; `None` when no check ran.
    pub check_passed: Option<bool>,
    /// Its diff changes something.
    pub changed: bool,
    /// Tokens the attempt used (prompt and completion).
    pub tokens: u64,
}

impl Candidate {
    /// Whether the attempt counts as a success: its check passed, or with no check, the
    /// agent completed.
    pub fn passed(&self) -> bool {
        self.check_passed.unwrap_or(self.completed)
    }
}

/// The attempts' numbers, best first.
pub fn rank(candidates: &[Candidate]) -> Vec<u32> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| compare(a, b));
    sorted.into_iter().map(|c| c.number).collect()
}

/// The best attempt's number; `None` when there is none.
pub fn best(candidates: &[Candidate]) -> Option<u32> {
    candidates
        .iter()
        .min_by(|a, b| compare(a, b))
        .map(|c| c.number)
}

/// `Less` when `a` is the better attempt.
fn compare(a: &Candidate, b: &Candidate) -> Ordering {
    b.passed()
        .cmp(&a.passed())
        .then(b.completed.cmp(&a.completed))
        .then(b.changed.cmp(&a.changed))
        .then(a.tokens.cmp(&b.tokens))
        .then(a.number.cmp(&b.number))
}

/// How many of `candidates` passed.
pub fn passed_count(candidates: &[Candidate]) -> u32 {
    u32::try_from(candidates.iter().filter(|c| c.passed()).count()).unwrap_or(u32::MAX)
}

/// The unbiased estimator of Chen et al. (2021) for one task: the chance that at least
/// one of `k` attempts drawn from `n` (of which `c` passed) passes,
/// `(C(n, k) - C(n-c, k)) / C(n, k)`. While `C(n, k)` is exact in an `f64` (up to 2^53)
/// the two binomials are computed as integers and divided once, so the result is the
/// correctly rounded fraction (1 of 3 at k = 1 prints `0.3333333333333333`); past that,
/// `1 - prod(1 - k/i)`, which never overflows. `k` above `n` has no estimate (0).
pub fn pass_at_k(n: u32, c: u32, k: u32) -> f64 {
    if k == 0 || k > n {
        return 0.0;
    }
    let c = c.min(n);
    if n - c < k {
        return 1.0;
    }
    if let (Some(all), Some(failing)) = (exact_binomial(n, k), exact_binomial(n - c, k)) {
        // Both are at most 2^53, so the conversions are exact.
        return (all - failing) as f64 / all as f64;
    }
    let none_pass: f64 = ((n - c + 1)..=n)
        .map(|i| 1.0 - f64::from(k) / f64::from(i))
        .product();
    1.0 - none_pass
}

/// Largest integer an `f64` holds exactly along with every integer below it.
const F64_EXACT: u64 = 1 << 53;

/// `C(n, k)` when it is at most 2^53, else `None`.
fn exact_binomial(n: u32, k: u32) -> Option<u64> {
    if k > n {
        return Some(0);
    }
    let k = k.min(n - k);
    let mut value: u128 = 1;
    for i in 1..=u128::from(k) {
        // value * (n - k + i) is C(n - k + i, i) * i: the division is exact.
        value = value.checked_mul(u128::from(n - k) + i)? / i;
        if value > u128::from(F64_EXACT) {
            return None;
        }
    }
    u64::try_from(value).ok()
}

/// pass@k of one task's attempts for every k from 1 to their number.
pub fn pass_at_k_table(candidates: &[Candidate]) -> BTreeMap<u32, f64> {
    let n = u32::try_from(candidates.len()).unwrap_or(u32::MAX);
    let c = passed_count(candidates);
    (1..=n).map(|k| (k, pass_at_k(n, c, k))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(number: u32, completed: bool, check: Option<bool>, tokens: u64) -> Candidate {
        Candidate {
            number,
            completed,
            check_passed: check,
            changed: true,
            tokens,
        }
    }

    #[test]
    fn a_passing_check_beats_a_completed_run_that_failed_it() {
        let attempts = [
            attempt(1, true, Some(false), 10),
            attempt(2, false, Some(true), 900),
            attempt(3, true, Some(false), 5),
        ];
        assert_eq!(best(&attempts), Some(2));
        assert_eq!(rank(&attempts), vec![2, 3, 1]);
        assert_eq!(passed_count(&attempts), 1);
    }

    #[test]
    fn without_a_check_completed_and_cheaper_wins_and_ties_go_to_the_earliest() {
        let attempts = [
            attempt(1, false, None, 1),
            attempt(2, true, None, 50),
            attempt(3, true, None, 40),
            attempt(4, true, None, 40),
        ];
        assert_eq!(rank(&attempts), vec![3, 4, 2, 1]);
        assert_eq!(passed_count(&attempts), 3);
    }

    #[test]
    fn an_attempt_that_changed_something_beats_one_that_did_not() {
        let mut idle = attempt(1, true, None, 1);
        idle.changed = false;
        let busy = attempt(2, true, None, 100);
        assert_eq!(best(&[idle, busy]), Some(2));
        assert_eq!(best(&[]), None);
    }

    #[test]
    fn pass_at_k_matches_the_binomial_definition() {
        fn choose(n: u32, k: u32) -> f64 {
            (0..k)
                .map(|i| f64::from(n - i) / f64::from(i + 1))
                .product()
        }
        for n in 1..=8 {
            for c in 0..=n {
                for k in 1..=n {
                    let exact = if n - c < k {
                        1.0
                    } else {
                        1.0 - choose(n - c, k) / choose(n, k)
                    };
                    assert!((pass_at_k(n, c, k) - exact).abs() < 1e-12, "{n} {c} {k}");
                }
            }
        }
        assert_eq!(pass_at_k(3, 1, 4), 0.0);
        assert_eq!(pass_at_k(3, 1, 0), 0.0);
    }

    #[test]
    fn small_counts_give_the_exact_fraction() {
        assert_eq!(pass_at_k(3, 1, 1), 1.0 / 3.0);
        assert_eq!(pass_at_k(3, 1, 1).to_string(), "0.3333333333333333");
        assert_eq!(pass_at_k(3, 2, 1), 2.0 / 3.0);
        assert_eq!(pass_at_k(10, 3, 1), 0.3);
        // 1 - C(8,2)/C(10,2) = 1 - 28/45 = 17/45.
        assert_eq!(pass_at_k(10, 2, 2), 17.0 / 45.0);
        assert_eq!(pass_at_k(5, 5, 5), 1.0);
        assert_eq!(pass_at_k(5, 0, 5), 0.0);
    }

    #[test]
    fn large_counts_stay_finite_and_agree_with_the_exact_form_at_the_seam() {
        assert_eq!(exact_binomial(60, 30), None, "past 2^53");
        assert_eq!(exact_binomial(50, 25), Some(126_410_606_437_752));
        let large = pass_at_k(1000, 10, 500);
        assert!(large > 0.999 && large <= 1.0, "{large}");
        let tiny = pass_at_k(1000, 1, 1);
        assert!((tiny - 0.001).abs() < 1e-15, "{tiny}");
        // Where both forms apply they agree to the last few bits.
        let product = 1.0
            - ((50 - 7 + 1)..=50)
                .map(|i| 1.0 - 25.0 / f64::from(i))
                .product::<f64>();
        assert!((pass_at_k(50, 7, 25) - product).abs() < 1e-12);
    }

    #[test]
    fn the_table_covers_every_k() {
        let attempts = [
            attempt(1, true, Some(false), 1),
            attempt(2, true, Some(true), 1),
            attempt(3, true, Some(false), 1),
        ];
        let table = pass_at_k_table(&attempts);
        assert_eq!(table.len(), 3);
        assert_eq!(table[&1], 1.0 / 3.0);
        assert_eq!(table[&3], 1.0);
    }
}
