//! The CPU the run's sandbox servers and their commands cost, for the agent's own
//! figures (`process` in `result.json`).
//!
//! A server waits for its commands, so their CPU time reaches the agent's
//! `RUSAGE_CHILDREN` only once the server itself is reaped, at the end of the run or
//! later. Each server reports its figures with every command's status and when it
//! stops; this book keeps the last of them, so the agent can count what its
//! not-yet-reaped servers have spent, and how much of it was the servers' own work.

use std::sync::Mutex;

use super::protocol::ServerUsage;

/// The figures of one server.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    last: ServerUsage,
    reaped: bool,
}

static BOOK: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// CPU time of the sandbox servers of this process, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerCpu {
    /// The servers' own CPU time (starting commands, reporting, killing), all of them.
    pub servers_ms: f64,
    /// What the servers not yet reaped have spent, their commands included: not yet in
    /// the agent's `RUSAGE_CHILDREN` (a reaped server's is).
    pub unreaped_ms: f64,
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
        })
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

    pub(super) fn reaped(&self) {
        if let Ok(mut book) = BOOK.lock()
            && let Some(entry) = book.get_mut(self.0)
        {
            entry.reaped = true;
        }
    }
}
