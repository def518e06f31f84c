//! Processes that left a command's process group (`setsid`, a daemon's double fork) are
//! out of reach of the group kill. Every command's environment carries a mark unique to
//! its call ([`CALL_MARK_VAR`]), which its descendants inherit wherever they move; once
//! the group is killed, the processes still carrying the mark are found through `/proc`
//! and killed too, so nothing a call started outlives it, in `agent-rs run` and in
//! `agent-rs tool` alike. (The orchestrator finds a run's processes the same way.) A
//! process that clears its own environment escapes this; the sandbox's PID namespace
//! is the fence for that. Elsewhere than Linux only the group is killed.
//!
//! Reading every process's environment costs about a millisecond of CPU on a machine with
//! a couple of hundred processes, at the end of every call. Only processes started after
//! the call's first one can carry its mark, and Linux hands out PIDs in increasing order
//! (wrapping at `pid_max`), so the sweep reads only the environments of the PIDs handed
//! out since ([`PidWindow`]): usually none or a handful. When the window cannot be
//! trusted (the last PID is unknown, or the call ran long enough for the PIDs to have
//! come round again) every process is read, as before. A process caught in the middle of
//! `exec` has no environment to read yet, or only the start of its old program's (see
//! [`EnvironBuffer::read`]); the sweep looks again until it has its new one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The environment variable that marks a command's processes.
pub(crate) const CALL_MARK_VAR: &str = "AGENT_RS_SHELL_CALL";

/// Rounds of looking: killing a process hands its children to another parent, and a
/// child forked while a round signalled is caught by the next.
const SWEEP_ROUNDS: usize = 20;
/// Pause between rounds that found something, for the kernel to reparent the children.
const SWEEP_PAUSE: Duration = Duration::from_millis(2);
/// Empty rounds in a row that end a sweep even while PIDs are being handed out.
const QUIET_ROUNDS: usize = 3;

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

/// The PIDs that processes started since a call's first process can have: from that
/// first PID round to the last one handed out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PidWindow {
    first: u32,
    opened: Instant,
}

/// PIDs handed out per second that the window assumes it is never outrun by: a full turn
/// of the PID space within one call would hide its processes from the window.
const MAX_FORKS_PER_SEC: u64 = 32_768;

/// Windows up to this many PIDs are probed directly instead of listing `/proc`.
const PROBE_MAX: u32 = 256;

impl PidWindow {
    /// The window of a call whose first process is `first` (bash, or the sandbox that
    /// starts it), opened now.
    pub(crate) fn from(first: u32) -> Self {
        Self {
            first,
            opened: Instant::now(),
        }
    }

    /// Whether `pid` may have been handed out since the window opened, given the last
    /// PID handed out and `pid_max`; `None` when that cannot be told (read everything).
    fn admits(self, last: Option<u32>, pid_max: Option<u32>) -> Option<impl Fn(u32) -> bool> {
        let (last, pid_max) = (last?, pid_max?);
        let round_trip_ms = u64::from(pid_max).saturating_mul(1000) / MAX_FORKS_PER_SEC;
        if self.opened.elapsed() >= Duration::from_millis(round_trip_ms) {
            return None;
        }
        let first = self.first;
        Some(move |pid: u32| {
            if last >= first {
                (first..=last).contains(&pid)
            } else {
                // The counter wrapped since: from `first` to the top, then from the bottom.
                pid >= first || pid <= last
            }
        })
    }
}

/// Kills every live process carrying `mark` (and the group each one leads); only the
/// PIDs in `window` are looked at (see the module docs).
///
/// A round that finds nothing ends the sweep only when nothing can have slipped past it.
/// A process caught between two programs (`setsid` turning into `sleep`: its
/// environment reads empty, or cut short, until the new program's is in place) is looked
/// at again, and
/// so is the window when PIDs were handed out while the round looked (a marked process
/// can fork a successor after the round read the last PID and exit before it is
/// probed); on a machine where other processes fork all the time, [`QUIET_ROUNDS`]
/// empty rounds in a row are taken as the end.
pub(crate) fn kill_marked(mark: &str, window: PidWindow) {
    let wanted = format!("{CALL_MARK_VAR}={mark}");
    let mut empty_rounds = 0;
    let mut environ = EnvironBuffer::default();
    for _ in 0..SWEEP_ROUNDS {
        let round = sweep_round(wanted.as_bytes(), Some(window), &mut environ);
        if round.found.is_empty() && !round.between_programs {
            empty_rounds += 1;
            if round.quiet || empty_rounds >= QUIET_ROUNDS {
                return;
            }
        } else {
            empty_rounds = 0;
        }
        for &pid in &round.found {
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

/// A number from a one-line `/proc` file.
fn read_proc_number(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Room for a process's environment, reused for every process a round reads.
struct EnvironBuffer {
    bytes: Vec<u8>,
    /// The last read took the whole environment of a program still running.
    whole: bool,
}

impl Default for EnvironBuffer {
    fn default() -> Self {
        Self {
            bytes: vec![0; ENVIRON_READ_BYTES],
            whole: false,
        }
    }
}

/// Room for a usual environment in one read.
const ENVIRON_READ_BYTES: usize = 16 * 1024;

impl EnvironBuffer {
    /// `pid`'s environment, `None` when it cannot be read (the process is gone).
    ///
    /// The kernel reads it from the memory of the program the process ran when the file
    /// was opened. If that program is replaced (`exec`) or the process exits between two
    /// reads, the next read finds nothing, so what was read so far looks like a whole,
    /// shorter environment: the mark may be in the part never read. One read with room
    /// to spare takes a usual environment at once, and [`Self::whole`] says whether the
    /// program is still there afterwards (a read from the start finds something).
    fn read(&mut self, pid: u32) -> Option<&[u8]> {
        use std::io::Read;
        use std::os::unix::fs::FileExt;
        self.whole = false;
        let mut file = std::fs::File::open(format!("/proc/{pid}/environ")).ok()?;
        let mut len = 0;
        loop {
            if len == self.bytes.len() {
                self.bytes.resize(len * 2, 0);
            }
            match file.read(&mut self.bytes[len..]) {
                Ok(0) => break,
                Ok(read) => len += read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        self.whole = len > 0 && file.read_at(&mut [0], 0).is_ok_and(|read| read == 1);
        self.bytes.get(..len)
    }
}

/// `pid_max` does not change under a running agent in practice; read it once.
fn pid_max() -> Option<u32> {
    static PID_MAX: OnceLock<Option<u32>> = OnceLock::new();
    *PID_MAX.get_or_init(|| read_proc_number("/proc/sys/kernel/pid_max"))
}

/// What one round of looking found.
struct Round {
    found: Vec<Pid>,
    /// No PID was handed out while the round looked.
    quiet: bool,
    /// A live process in the window had no whole environment to read: one in the
    /// middle of `exec`, which may carry the mark once its new program starts.
    between_programs: bool,
}

/// The live processes whose environment holds `wanted` (`NAME=mark`), never this one;
/// within `window` when it can be trusted.
#[cfg(test)]
fn marked_processes(wanted: &[u8], window: Option<PidWindow>) -> Vec<Pid> {
    sweep_round(wanted, window, &mut EnvironBuffer::default()).found
}

fn sweep_round(wanted: &[u8], window: Option<PidWindow>, environ: &mut EnvironBuffer) -> Round {
    // Read before listing: a PID handed out after this is outside the window, and is
    // caught by the next round if it carries the mark.
    let last = read_proc_number("/proc/sys/kernel/ns_last_pid");
    let admits = window.and_then(|window| window.admits(last, pid_max()));
    // A narrow window is probed PID by PID: listing `/proc` costs more than a few
    // hundred failed opens (a PID probed this way may be a thread, whose environment is
    // its process's: killing that process is what the mark asks for anyway).
    let candidates: Vec<u32> = match (window, last) {
        (Some(window), Some(last))
            if admits.is_some() && last >= window.first && last - window.first < PROBE_MAX =>
        {
            (window.first..=last).collect()
        }
        _ => match std::fs::read_dir("/proc") {
            Ok(entries) => entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&pid| admits.as_ref().is_none_or(|admits| admits(pid)))
                .collect(),
            Err(_) => Vec::new(),
        },
    };
    let own = std::process::id();
    let mut between_programs = false;
    let mut found = Vec::new();
    for pid in candidates.into_iter().filter(|&pid| pid != own) {
        let Some(read) = environ.read(pid) else {
            continue;
        };
        if read.split(|byte| *byte == 0).any(|entry| entry == wanted) {
            if let Ok(pid) = i32::try_from(pid) {
                found.push(Pid::from_raw(pid));
            }
        } else if !environ.whole {
            // Empty, or cut short: a zombie or an exiting process (dead already), a
            // kernel thread, or a process in the middle of `exec` (its old program's
            // memory gone, its new environment not yet set).
            between_programs |= in_exec(pid);
        }
    }
    Round {
        found,
        quiet: last.is_some() && read_proc_number("/proc/sys/kernel/ns_last_pid") == last,
        between_programs,
    }
}

/// Whether `pid`, whose environment reads empty or cut short, is a live user process (so
/// one in the middle of `exec`), not a zombie, an exiting process or a kernel thread.
fn in_exec(pid: u32) -> bool {
    const PF_EXITING: u64 = 0x4;
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ppid pgrp session tty_nr tpgid flags ...`; comm may hold anything.
    let mut fields = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace();
    let state = fields.next();
    let flags = fields.nth(5).and_then(|flags| flags.parse::<u64>().ok());
    !matches!(state, Some("Z" | "X" | "x"))
        && flags.is_some_and(|flags| flags & (PF_EXITING | PF_KTHREAD) == 0)
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
        assert!(marked_processes(b"AGENT_RS_SHELL_CALL=no-such-call", None).is_empty());
    }

    #[test]
    fn the_window_spans_the_pids_handed_out_since_it_opened() {
        let window = PidWindow::from(1000);
        let admits = window.admits(Some(1200), Some(32_768)).unwrap();
        assert!(admits(1000) && admits(1100) && admits(1200));
        assert!(!admits(999) && !admits(1201) && !admits(5));
        // Wrapped past pid_max since.
        let wrapped = PidWindow::from(32_700)
            .admits(Some(400), Some(32_768))
            .unwrap();
        assert!(wrapped(32_700) && wrapped(32_768) && wrapped(301) && wrapped(400));
        assert!(!wrapped(401) && !wrapped(32_699));
    }

    #[test]
    fn an_unknown_last_pid_or_a_long_call_reads_every_process() {
        let window = PidWindow::from(1000);
        assert!(window.admits(None, Some(32_768)).is_none());
        assert!(window.admits(Some(1200), None).is_none());
        let old = PidWindow {
            first: 1000,
            opened: Instant::now() - Duration::from_secs(2),
        };
        assert!(
            old.admits(Some(1200), Some(32_768)).is_none(),
            "a turn of 32768 PIDs in a second is possible"
        );
        assert!(old.admits(Some(1200), Some(4_194_304)).is_some());
    }

    /// Right after its command exits, a `setsid` child may be between two programs
    /// (`setsid`, then `sleep`): its environment reads empty for that moment, and a
    /// sweep that took that for "not marked" let it live on.
    #[test]
    fn a_process_caught_between_two_programs_is_killed() {
        for _ in 0..40 {
            let mark = new_call_mark();
            let mut starter = std::process::Command::new("sh")
                .args(["-c", "(setsid sleep 30 >/dev/null 2>&1 &)"])
                .env(CALL_MARK_VAR, &mark)
                .spawn()
                .unwrap();
            let window = PidWindow::from(starter.id());
            let _ = starter.wait();
            kill_marked(&mark, window);
            let wanted = format!("{CALL_MARK_VAR}={mark}");
            // A killed process is gone the next time it runs, which on a loaded machine
            // can be a while after the sweep: what is still there must be killed.
            let left = marked_processes(wanted.as_bytes(), None);
            let alive: Vec<String> = left
                .iter()
                .filter(|pid| !killed(pid.as_raw()))
                .map(|pid| describe(pid.as_raw()))
                .collect();
            for &pid in &left {
                let _ = kill(pid, Signal::SIGKILL);
            }
            assert_eq!(
                alive,
                Vec::<String>::new(),
                "a process between two programs survived the sweep"
            );
        }
    }

    /// Whether `pid` is gone, dead, exiting, or has a `SIGKILL` waiting for it.
    fn killed(pid: i32) -> bool {
        const PF_EXITING: u64 = 0x4;
        let sigkill = 1u64 << (Signal::SIGKILL as u64 - 1);
        let (Ok(status), Ok(stat)) = (
            std::fs::read_to_string(format!("/proc/{pid}/status")),
            std::fs::read_to_string(format!("/proc/{pid}/stat")),
        ) else {
            return true;
        };
        let pending = status
            .lines()
            .filter_map(|line| {
                line.strip_prefix("SigPnd:")
                    .or_else(|| line.strip_prefix("ShdPnd:"))
            })
            .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .any(|mask| mask & sigkill != 0);
        let mut fields = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace();
        let state = fields.next();
        let exiting = fields
            .nth(5)
            .and_then(|flags| flags.parse::<u64>().ok())
            .is_some_and(|flags| flags & PF_EXITING != 0);
        pending || exiting || matches!(state, Some("Z" | "X" | "x"))
    }

    /// What a process that outlived a sweep was doing: its program, its state and its
    /// pending signals (a pending `SIGKILL` means it was killed and is not gone yet).
    fn describe(pid: i32) -> String {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let fields: Vec<&str> = status
            .lines()
            .filter(|line| {
                ["State:", "PPid:", "SigPnd:", "ShdPnd:"]
                    .iter()
                    .any(|name| line.starts_with(name))
            })
            .collect();
        format!(
            "{pid} {:?} {}",
            String::from_utf8_lossy(&cmdline).replace('\0', " "),
            fields.join(" ")
        )
    }

    #[test]
    fn a_process_started_during_the_call_is_found_in_the_window() {
        let mark = new_call_mark();
        let window = PidWindow::from(std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(CALL_MARK_VAR, &mark)
            .spawn()
            .unwrap();
        let wanted = format!("{CALL_MARK_VAR}={mark}");
        // Probed a few times: `spawn` returns once the child has begun its `exec`, and
        // until the new program's environment is in place it reads empty (the sweep
        // itself looks again at such a process; see `kill_marked`).
        let mut found = Vec::new();
        for _ in 0..20 {
            found = marked_processes(wanted.as_bytes(), Some(window));
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, [Pid::from_raw(child.id() as i32)]);
    }
}
