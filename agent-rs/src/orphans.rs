//! Processes that escaped a call and every mark: `agent-rs tool`, `run` and `job` kill
//! them before they exit.
//!
//! The shell tool kills the processes that left a command's group by the mark in their
//! environment; one that also cleared its environment (`env -i setsid ...`) carries
//! nothing. But this process is made the subreaper of everything it starts
//! ([`adopt`]), so such a process becomes its child once its own parent is gone, and
//! [`kill_adopted`] kills it with the group it leads. `agent-rs tool` does so after its
//! one call; `run` and `job`, whose MCP servers are children too, at their end (during
//! the run the sandbox's PID namespace is the fence).

#[cfg(target_os = "linux")]
mod linux {
    use nix::errno::Errno;
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};

    /// Rounds of looking: a killed process's own children are adopted in turn.
    const ROUNDS: usize = 20;
    /// How long children that are already ending get to become zombies before the
    /// search for live ones reads every process's `/proc/<pid>/stat`: bubblewrap's
    /// inner process dies with its outer one and is handed here while it exits.
    const SETTLE: Duration = Duration::from_millis(10);
    const SETTLE_STEP: Duration = Duration::from_millis(1);

    /// Makes this process the one its descendants are handed to when their parent dies.
    pub fn adopt() {
        if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::debug!(%err, "cannot become the subreaper of the call's processes");
        }
    }

    /// Kills every live child of this process, and the groups they lead, and reaps the
    /// children that exited: to be called once every child it started itself has been
    /// waited for.
    pub fn kill_adopted() {
        if !settle() {
            return;
        }
        let own = std::process::id();
        for _ in 0..ROUNDS {
            if !reap_exited() {
                return;
            }
            let children = live_children(own);
            if children.is_empty() {
                return;
            }
            for pid in children {
                tracing::debug!(pid, "killing a process that escaped its call");
                let pid = Pid::from_raw(pid);
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = kill(pid, Signal::SIGKILL);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Reaps the children that have exited and says whether any is left. A process
    /// adopted once its parent died (bubblewrap's inner process, say) is waited for by
    /// no one else; once those are reaped the kernel tells at once whether a live child
    /// remains, without the scan of every process's `/proc/<pid>/stat` that
    /// [`live_children`] makes (a millisecond on a machine running a hundred processes).
    fn reap_exited() -> bool {
        loop {
            match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG) {
                // Children, none of them exited.
                Ok(WaitStatus::StillAlive) => return true,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => return false,
                Err(_) => return true,
            }
        }
    }

    /// Reaps children as they end, for up to [`SETTLE`]; says whether any is left.
    fn settle() -> bool {
        let deadline = Instant::now() + SETTLE;
        while reap_exited() {
            if Instant::now() >= deadline {
                return true;
            }
            std::thread::sleep(SETTLE_STEP);
        }
        false
    }

    /// The processes whose parent is `parent`, zombies (dead already) left out.
    fn live_children(parent: u32) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    // `pid (comm) state ppid ...`; the name may hold spaces and parentheses.
                    let mut fields = stat
                        .rsplit_once(')')
                        .map_or("", |(_, rest)| rest)
                        .split_whitespace();
                    let state = fields.next();
                    let ppid = fields.next().and_then(|ppid| ppid.parse::<u32>().ok());
                    ppid == Some(parent) && state != Some("Z")
                })
            })
            .collect()
    }
}

#[cfg(target_os = "linux")]
pub use linux::{adopt, kill_adopted};

/// How long the end of a run waits for its sandbox servers to stop (they were told to
/// when their sandboxes were dropped, and take milliseconds).
const SERVERS_END_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The end of `run` and `job`, once the run is over and its sandboxes dropped: waits for
/// the sandbox servers to stop and be reaped (their bubblewrap is a child like any other:
/// left alive, it would be killed below, and found only by scanning `/proc`), then kills
/// what escaped ([`kill_adopted`]).
#[cfg(target_os = "linux")]
pub fn end_children() {
    if !tools::sandbox::wait_for_sandbox_servers(SERVERS_END_LIMIT) {
        tracing::debug!("a sandbox server did not stop in time; it is killed with the rest");
    }
    kill_adopted();
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::process::Command;

    use nix::errno::Errno;
    use nix::sys::wait::{Id, WaitPidFlag, waitid};

    fn has_no_child() -> bool {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        waitid(Id::All, flags) == Err(Errno::ECHILD)
    }

    /// One test: the process's children are the subject, and a second test in the same
    /// process would share them.
    #[test]
    fn an_adopted_process_is_killed_and_every_exited_child_reaped() {
        super::adopt();
        // A child that has exited and that nobody waits for.
        let exited = Command::new("true").spawn().unwrap();
        // A process whose parent exits at once: adopted by this one, and alive.
        let mut parent = Command::new("sh")
            .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::Read::read_to_string(parent.stdout.as_mut().unwrap(), &mut line).unwrap();
        parent.wait().unwrap();
        let orphan: i32 = line.trim().parse().unwrap();
        std::mem::forget(exited);
        assert!(!has_no_child());

        super::kill_adopted();

        assert!(
            has_no_child(),
            "the orphan was killed and every child reaped"
        );
        assert!(
            !std::path::Path::new(&format!("/proc/{orphan}")).exists(),
            "the orphan is gone"
        );
        // Nothing left: returns at once.
        super::kill_adopted();
    }
}

/// Elsewhere than Linux only the mark and the process group are used.
#[cfg(not(target_os = "linux"))]
pub fn adopt() {}

#[cfg(not(target_os = "linux"))]
pub fn kill_adopted() {}
