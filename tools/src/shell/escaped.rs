//! Processes that left a command's process group (`setsid`, a daemon's double fork) are
//! out of reach of the group kill. Every command's environment carries a mark unique to
//! its call ([`CALL_MARK_VAR`]), which its descendants inherit wherever they move; once
//! the group is killed, the processes still carrying the mark are found through `/proc`
//! and killed too, so nothing a call started outlives it, in `agent-rs run` and in
//! `agent-rs tool` alike. (The orchestrator finds a run's processes the same way.) A
//! process that clears its own environment escapes this; the sandbox's PID namespace
//! is the fence for that. Elsewhere than Linux only the group is killed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The environment variable that marks a command's processes.
pub(crate) const CALL_MARK_VAR: &str = "AGENT_RS_SHELL_CALL";

/// Rounds of looking: killing a process hands its children to another parent, and a
/// child forked while a round signalled is caught by the next.
const SWEEP_ROUNDS: usize = 20;
/// Pause between rounds that found something, for the kernel to reparent the children.
const SWEEP_PAUSE: Duration = Duration::from_millis(2);

static CALLS: AtomicU64 = AtomicU64::new(0);

/// A mark no other call (of this process or another) carries.
pub(crate) fn new_call_mark() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kills every live process carrying `mark` (and the group each one leads).
pub(crate) fn kill_marked(mark: &str) {
    let wanted = format!("{CALL_MARK_VAR}={mark}");
    for _ in 0..SWEEP_ROUNDS {
        let found = marked_processes(wanted.as_bytes());
        if found.is_empty() {
            return;
        }
        for pid in found {
            tracing::debug!(
                pid = pid.as_raw(),
                "killing a process that left its command's group"
            );
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(SWEEP_PAUSE);
    }
}

/// The live processes whose environment holds `wanted` (`NAME=mark`), never this one.
fn marked_processes(wanted: &[u8]) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|&pid| {
            // A zombie's environment reads empty: it is dead already.
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|entry| entry == wanted)
            })
        })
        .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_unique() {
        assert_ne!(new_call_mark(), new_call_mark());
    }

    #[test]
    fn an_unmarked_sweep_finds_nothing() {
        assert!(marked_processes(b"AGENT_RS_SHELL_CALL=no-such-call").is_empty());
    }
}
