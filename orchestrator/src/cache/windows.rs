//! Fixed rate-limit windows in this process's memory, for [`super::MemoryStatusCache`].
//!
//! A key's window opens at its first hit and lasts the window's length; hits in it are
//! counted, and the first hit after it ended opens the next one. The table is bounded:
//! once it holds [`PRUNE_AT`] keys, windows that ended are dropped (a key whose window
//! ended counts from zero again anyway, so nothing is lost).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::WindowHits;

/// Keys held before the ended windows are swept out.
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Default)]
pub(super) struct HitWindows {
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    ends: Instant,
    hits: u64,
}

impl HitWindows {
    /// Counts a hit on `key` at `now`.
    pub(super) fn hit(&self, key: &str, length: Duration, now: Instant) -> WindowHits {
        // Every change under the lock leaves the table whole before anything can panic.
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= PRUNE_AT && !windows.contains_key(key) {
            windows.retain(|_, window| window.ends > now);
        }
        let window = windows.entry(key.to_string()).or_insert(Window {
            ends: now + length,
            hits: 0,
        });
        if window.ends <= now {
            *window = Window {
                ends: now + length,
                hits: 0,
            };
        }
        window.hits += 1;
        WindowHits {
            hits: window.hits,
            resets_in: window.ends - now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_count_within_a_window_and_start_again_after_it() {
        let windows = HitWindows::default();
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        assert_eq!(windows.hit("a", minute, start).hits, 1);
        let second = windows.hit("a", minute, start + Duration::from_secs(20));
        assert_eq!(second.hits, 2);
        assert_eq!(second.resets_in, Duration::from_secs(40));
        assert_eq!(windows.hit("b", minute, start).hits, 1, "keys apart");
        let next = windows.hit("a", minute, start + minute);
        assert_eq!((next.hits, next.resets_in), (1, minute));
    }

    #[test]
    fn ended_windows_are_swept_once_the_table_is_full() {
        let windows = HitWindows::default();
        let start = Instant::now();
        let second = Duration::from_secs(1);
        for n in 0..PRUNE_AT {
            windows.hit(&format!("k{n}"), second, start);
        }
        windows.hit("late", second, start + second);
        let held = windows.windows.lock().unwrap().len();
        assert_eq!(held, 1);
    }
}
