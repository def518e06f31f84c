//! Rate-limit windows: hits on a key are counted by every client alike, per key, until
//! the window ends.

use std::time::Duration;

use super::CacheFixture;

pub async fn hits_are_counted_per_key_across_clients_until_the_window_ends(fx: CacheFixture) {
    let window = Duration::from_millis(700);
    let key = format!("owner-{}", uuid::Uuid::new_v4().simple());
    let other_key = format!("{key}-other");
    let first = fx.cache.count_hit(&key, window).await.unwrap();
    assert_eq!(first.hits, 1);
    assert!(
        first.resets_in <= window && !first.resets_in.is_zero(),
        "{first:?}"
    );
    assert_eq!(fx.other.count_hit(&key, window).await.unwrap().hits, 2);
    assert_eq!(fx.cache.count_hit(&key, window).await.unwrap().hits, 3);
    assert_eq!(
        fx.cache.count_hit(&other_key, window).await.unwrap().hits,
        1
    );
    tokio::time::sleep(window + Duration::from_millis(150)).await;
    let next = fx.other.count_hit(&key, window).await.unwrap();
    assert_eq!(next.hits, 1, "a new window: {next:?}");
}
