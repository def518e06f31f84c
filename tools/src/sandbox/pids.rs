//! A `pids` cgroup per command: the cap that stops a fork bomb.
//!
//! `RLIMIT_NPROC` is no cap here: it counts every process of the user, and the kernel
//! does not apply it to root, which is what an agent in a container often is. A cgroup's
//! `pids.max` counts only the command's own processes and threads, whoever runs them.
//!
//! The command must be in the cgroup before it forks: bubblewrap is started with
//! `--block-fd 0`, moved here together with what it has forked so far (a fork in
//! progress completes before the move, so every child is either listed or lands inside),
//! and only then given the byte that lets the command start.
//!
//! Both hierarchies work: cgroup v1's `pids` controller (`/sys/fs/cgroup/pids`) and
//! cgroup v2's root when it delegates `pids`. Where neither can be written (no
//! privilege, a read-only `/sys`), commands run without the cap, and the sandbox summary
//! says so (no `max_processes`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Candidates for the parent of the per-command cgroups, in order.
const ROOTS: [&str; 2] = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"];
/// Folder under the root that holds this tool's cgroups.
const PARENT: &str = "agent-rs-sandbox";
/// How long removal of an emptied cgroup is retried (its processes take a moment to go).
const REMOVE_TRIES: u32 = 50;
const REMOVE_PAUSE: Duration = Duration::from_millis(10);

/// The first root where a `pids` cgroup can be made and removed, if any.
pub(super) fn usable_root() -> Option<PathBuf> {
    ROOTS.iter().map(Path::new).find_map(|root| {
        if !root.join("cgroup.procs").exists() || !has_pids_controller(root) {
            return None;
        }
        let parent = root.join(PARENT);
        let probe = PidsCgroup::create(&parent, &format!("probe-{}", std::process::id()), 1);
        probe.ok().map(|_| parent)
    })
}

fn has_pids_controller(root: &Path) -> bool {
    if root.ends_with("pids") {
        return true;
    }
    std::fs::read_to_string(root.join("cgroup.subtree_control"))
        .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "pids"))
}

/// One command's cgroup; its processes are killed and the folder removed on drop.
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Makes `parent/name` (and `parent`) with `pids.max` = `max`.
    pub(crate) fn create(parent: &Path, name: &str, max: u32) -> io::Result<Self> {
        std::fs::create_dir_all(parent)?;
        let dir = parent.join(name);
        std::fs::create_dir(&dir)?;
        let cgroup = Self { dir };
        std::fs::write(cgroup.dir.join("pids.max"), max.to_string())?;
        Ok(cgroup)
    }

    /// Moves `pid` and every process it has forked so far into the cgroup.
    pub(crate) fn adopt_tree(&self, pid: u32) -> io::Result<()> {
        self.add(pid)?;
        for child in children(pid) {
            self.adopt_tree(child)?;
        }
        Ok(())
    }

    /// `cgroup.procs`, open for writing: a child writes `0` to it to join.
    pub(crate) fn procs_file(&self) -> io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))
    }

    fn add(&self, pid: u32) -> io::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// Whether a fork was refused because the cap was reached.
    pub(crate) fn limit_was_hit(&self) -> bool {
        std::fs::read_to_string(self.dir.join("pids.events")).is_ok_and(|events| {
            events
                .lines()
                .filter_map(|line| line.strip_prefix("max "))
                .any(|count| count.trim().parse::<u64>().is_ok_and(|n| n > 0))
        })
    }

    fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        for _ in 0..REMOVE_TRIES {
            for pid in self.members() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(err) if err.kind() == io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(REMOVE_PAUSE),
            }
        }
        tracing::warn!(cgroup = %self.dir.display(), "could not remove a command's pids cgroup");
    }
}

/// The children of `pid` (all its threads'), from `/proc`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}
