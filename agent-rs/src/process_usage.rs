//! What the agent process itself has cost so far, in CPU time and memory, apart from the
//! commands it ran: the figures `scripts/bench-agent` holds the loop to, written to
//! `result.json` so any run can be checked the same way.

use nix::sys::resource::{UsageWho, getrusage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CPU time and peak memory, from `getrusage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessUsage {
    /// User + system CPU time of the agent process (all its threads), in milliseconds.
    pub cpu_ms: f64,
    /// User + system CPU time of the commands it ran, and of the sandbox servers that
    /// started them (which the next field counts apart).
    pub children_cpu_ms: f64,
    /// Of that, the sandbox servers' own CPU time (one per run's sandbox, starting its
    /// commands, see `tools::sandbox`).
    #[serde(default)]
    pub sandbox_server_cpu_ms: f64,
    /// Of the children's, what the commands the sandbox servers ran cost themselves. The
    /// whole process tree's CPU time less this is the harness's cost: the agent, its
    /// servers, and the bubblewrap processes that start and probe the sandbox.
    #[serde(default)]
    pub commands_cpu_ms: f64,
    /// Peak resident memory of the agent process, in KiB.
    pub peak_rss_kb: u64,
}

impl ProcessUsage {
    /// The usage so far; zeros where the system does not say.
    pub fn now() -> Self {
        let own = getrusage(UsageWho::RUSAGE_SELF).ok();
        let children = getrusage(UsageWho::RUSAGE_CHILDREN).ok();
        let cpu = |usage: &nix::sys::resource::Usage| {
            let time = |t: nix::sys::time::TimeVal| {
                t.tv_sec() as f64 * 1000.0 + t.tv_usec() as f64 / 1000.0
            };
            time(usage.user_time()) + time(usage.system_time())
        };
        // A server not yet reaped is in no `getrusage` figure yet.
        let servers = tools::sandbox::sandbox_server_cpu();
        Self {
            cpu_ms: own.as_ref().map_or(0.0, cpu),
            children_cpu_ms: children.as_ref().map_or(0.0, cpu) + servers.unreaped_ms,
            sandbox_server_cpu_ms: servers.servers_ms,
            commands_cpu_ms: servers.commands_ms,
            peak_rss_kb: own.map_or(0, |usage| u64::try_from(usage.max_rss()).unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_grows_with_work_done() {
        let before = ProcessUsage::now();
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = ProcessUsage::now();
        assert!(after.cpu_ms > before.cpu_ms, "{before:?} {after:?}");
        assert!(after.peak_rss_kb > 0);
    }
}
