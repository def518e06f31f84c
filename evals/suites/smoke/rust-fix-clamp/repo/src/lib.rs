//! Range helpers for progress bars.

/// Limits `value` to `low..=high`.
pub fn clamp(value: i64, low: i64, high: i64) -> i64 {
    if value < low {
        return high;
    }
    if value > high {
        return low;
    }
    value
}

/// Share of `part` in `whole` in percent, limited to 0..=100; 0 when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    clamp(part * 100 / whole, 0, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_inside_the_range_is_kept() {
        assert_eq!(clamp(5, 0, 10), 5);
    }
}
