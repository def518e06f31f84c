//! Finding and stopping a run's processes through `/proc` and process groups.
//!
//! Every process of a run (its supervisor, the agent, and whatever the agent's shell tool
//! started, even in process groups of their own) inherits `AGENT_RUN_NAME={name}`, so
//! they are found by their environment, which also guards against a recycled pid. This
//! reads `/proc`, so it is Linux-only; elsewhere only the run's process group is
//! signalled.

use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::runner::RunnerError;

/// The variable that ties a process to its run (and proves it is one of ours).
pub const RUN_NAME_VAR: &str = "AGENT_RUN_NAME";
/// Scans for a run's leftover processes: catches those forked while a previous round
/// was signalling.
const SWEEP_ROUNDS: usize = 5;

/// Whether `pid` is a live (not zombie) process carrying `AGENT_RUN_NAME={name}`.
pub fn runs(pid: i32, name: &str) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    if matches!(process_state(&stat), None | Some('Z' | 'X' | 'x')) {
        return false;
    }
    let Ok(environ) = std::fs::read(proc_dir.join("environ")) else {
        return false;
    };
    let wanted = format!("{RUN_NAME_VAR}={name}");
    environ
        .split(|byte| *byte == 0)
        .any(|entry| entry == wanted.as_bytes())
}

/// The state letter of a `/proc/{pid}/stat` line (`pid (comm) S ...`; `comm` may hold
/// spaces and parentheses, so it is found after the last `)`).
pub fn process_state(stat: &str) -> Option<char> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.trim_start().chars().next()
}

/// The live processes of run `name`, never this process itself.
fn run_processes(name: &str) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| u32::try_from(*pid).is_ok_and(|pid| pid != own))
        .filter(|pid| runs(*pid, name))
        .map(Pid::from_raw)
        .collect()
}

/// Kills every process left that carries the run's name.
///
/// Signalling the agent's process group is not enough: the agent's shell tool starts
/// each command in a process group of its own (to time it out as a whole), and an agent
/// stopped by a signal does not get to clean those up, so `sleep 600` or a test server
/// would outlive the run.
pub async fn kill_run_processes(name: &str) {
    let name = name.to_string();
    let sweep = tokio::task::spawn_blocking(move || {
        for _ in 0..SWEEP_ROUNDS {
            let pids = run_processes(&name);
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                tracing::debug!(run = %name, %pid, "killing a leftover process of the run");
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    });
    if let Err(err) = sweep.await {
        tracing::warn!(error = %err, "looking for a run's leftover processes failed");
    }
}

/// Whether any process of group `pgid` is left.
pub fn group_exists(pgid: Pid) -> bool {
    killpg(pgid, None).is_ok()
}

/// Signals a whole group; a group already gone is fine.
pub fn signal_group(pgid: Pid, signal: Signal) -> Result<(), RunnerError> {
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(err) => Err(RunnerError::failed(
            format!("send {signal} to agent process group {pgid}"),
            err,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_state_is_read_after_the_last_parenthesis() {
        assert_eq!(process_state("42 (agent) S 1 42"), Some('S'));
        assert_eq!(process_state("42 (a) b) (c) Z 1 42"), Some('Z'));
        assert_eq!(process_state("garbage"), None);
    }

    #[test]
    fn this_process_does_not_run_an_unrelated_name() {
        let own = i32::try_from(std::process::id()).unwrap();
        assert!(!runs(own, "agent-nobody-1"));
        assert!(!runs(i32::MAX, "agent-nobody-1"));
    }
}
