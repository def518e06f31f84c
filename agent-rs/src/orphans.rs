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
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::Pid;

    /// Rounds of looking: a killed process's own children are adopted in turn.
    const ROUNDS: usize = 20;

    /// Makes this process the one its descendants are handed to when their parent dies.
    pub fn adopt() {
        if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::debug!(%err, "cannot become the subreaper of the call's processes");
        }
    }

    /// Kills every live child of this process, and the groups they lead: to be called
    /// once every child it started itself has been waited for.
    pub fn kill_adopted() {
        let own = std::process::id();
        for _ in 0..ROUNDS {
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

/// Elsewhere than Linux only the mark and the process group are used.
#[cfg(not(target_os = "linux"))]
pub fn adopt() {}

#[cfg(not(target_os = "linux"))]
pub fn kill_adopted() {}
