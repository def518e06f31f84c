use smoke_clamp::{clamp, percent};

#[test]
fn value_below_the_range_becomes_the_low_bound() {
    assert_eq!(clamp(-3, 0, 10), 0);
}

#[test]
fn value_above_the_range_becomes_the_high_bound() {
    assert_eq!(clamp(42, 0, 10), 10);
}

#[test]
fn bounds_themselves_are_kept() {
    assert_eq!(clamp(0, 0, 10), 0);
    assert_eq!(clamp(10, 0, 10), 10);
}

#[test]
fn percent_is_limited_to_one_hundred() {
    assert_eq!(percent(3, 2), 100);
    assert_eq!(percent(1, 4), 25);
    assert_eq!(percent(-1, 4), 0);
    assert_eq!(percent(1, 0), 0);
}
