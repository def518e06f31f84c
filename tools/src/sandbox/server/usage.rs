//! The CPU the run's sandbox servers and their commands cost, for the agent's own
//! figures (`process` in `result.json`).
//!
//! A server waits for its commands, so their CPU time reaches the agent's
//! `RUSAGE_CHILDREN` only once the server itself is reaped, at the end of the run or
//! later. Each server reports its figures with every command's status and when it
//! stops; this book keeps the last of them, so the agent can count what its
//! not-yet-reaped servers have spent, and how much of it was the servers' own work.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::protocol::ServerUsage;

/// The figures of one server.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    last: ServerUsage,
    reaped: bool,
}

static BOOK: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// Notified each time a server is reaped.
static REAPED: Condvar = Condvar::new();

/// CPU time of the sandbox servers of this process, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerCpu {
    /// The servers' own CPU time (starting commands, reporting, killing), all of them.
    pub servers_ms: f64,
    /// What the servers not yet reaped have spent, their commands included: not yet in
    /// the agent's `RUSAGE_CHILDREN` (a reaped server's is).
    pub unreaped_ms: f64,
    /// The commands' own CPU time, all servers' (what they waited for): the part of the
    /// run's whole process tree that is the task's work, not the harness's.
    pub commands_ms: f64,
}

/// The figures so far.
pub fn sandbox_server_cpu() -> ServerCpu {
    let Ok(book) = BOOK.lock() else {
        return ServerCpu::default();
    };
    let ms = |us: u64| us as f64 / 1000.0;
    book.iter()
        .fold(ServerCpu::default(), |sum, entry| ServerCpu {
            servers_ms: sum.servers_ms + ms(entry.last.own_us),
            unreaped_ms: sum.unreaped_ms
                + if entry.reaped {
                    0.0
                } else {
                    ms(entry.last.own_us + entry.last.children_us)
                },
            commands_ms: sum.commands_ms + ms(entry.last.children_us),
        })
}

/// Waits up to `limit` until every sandbox server this process started has been
/// reaped; returns whether they all were. For the end of a run, once its sandboxes are
/// dropped (which tells their servers to stop): the servers end within milliseconds,
/// and a process that exits before reaping them leaves their cost uncounted and makes
/// the search for escaped processes (`orphans`) scan every process of the machine.
pub fn wait_for_sandbox_servers(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let Ok(mut book) = BOOK.lock() else {
        return false;
    };
    while book.iter().any(|entry| !entry.reaped) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        book = match REAPED.wait_timeout(book, left) {
            Ok((book, _)) => book,
            Err(_) => return false,
        };
    }
    true
}

/// One server's page of the book.
#[derive(Debug, Clone, Copy)]
pub(super) struct Page(usize);

pub(super) fn register() -> Page {
    match BOOK.lock() {
        Ok(mut book) => {
            book.push(Entry::default());
            Page(book.len() - 1)
        }
        Err(_) => Page(usize::MAX),
    }
}

impl Page {
    pub(super) fn update(&self, usage: ServerUsage) {
        if let Ok(mut book) = BOOK.lock()
            && let Some(entry) = book.get_mut(self.0)
        {
            entry.last = usage;
        }
    }

    /// The server was reaped, or never started: nothing of it is left to wait for.
    pub(super) fn reaped(&self) {
        if let Ok(mut book) = BOOK.lock()
            && let Some(entry) = book.get_mut(self.0)
        {
            entry.reaped = true;
        }
        REAPED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The book is the process's: under `cargo test` other tests' servers share it, so
    /// this one counts on nextest's process per test (as `scripts/test` runs it).
    #[test]
    fn the_end_of_a_run_waits_for_its_servers_to_be_reaped() {
        let page = register();
        assert!(!wait_for_sandbox_servers(Duration::from_millis(20)));
        let reaper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            page.reaped();
        });
        let started = Instant::now();
        assert!(wait_for_sandbox_servers(Duration::from_secs(10)));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "woken when reaped"
        );
        reaper.join().unwrap();
        assert!(wait_for_sandbox_servers(Duration::ZERO));
    }
}
