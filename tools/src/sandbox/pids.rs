//! A `pids` cgroup for each command: the cap that stops a fork bomb.
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
//! A command's cgroup is emptied when the command ends (every process in it killed and
//! reaped) and kept for the run's next command ([`PidsPool`]); `pids.events` counts the
//! refused forks of every command it served, so each command compares with the count it
//! started from.
//!
//! Both hierarchies work: cgroup v1's `pids` controller (`/sys/fs/cgroup/pids`) and
//! cgroup v2's root when it delegates `pids`. Where neither can be written (no
//! privilege, a read-only `/sys`), commands run without the cap, and the sandbox summary
//! says so (no `max_processes`).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Candidates for the parent of the per-command cgroups, in order.
const ROOTS: [&str; 2] = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"];
/// Folder under the root that holds this tool's cgroups.
const PARENT: &str = "agent-rs-sandbox";
/// How long emptying a command's cgroup is retried (its processes take a moment to go).
const REMOVE_TRIES: u32 = 50;
const REMOVE_PAUSE: Duration = Duration::from_millis(10);

/// The cgroups of a run's commands, made where a `pids` cgroup can be made and removed,
/// if anywhere. The first is made here, as the check that it works.
pub(super) fn usable_pool(max: u32) -> Option<Arc<PidsPool>> {
    ROOTS.iter().map(Path::new).find_map(|root| {
        if !root.join("cgroup.procs").exists() || !has_pids_controller(root) {
            return None;
        }
        sweep_stale(&root.join(PARENT));
        let pool = Arc::new(PidsPool {
            parent: root.join(PARENT),
            max,
            idle: Mutex::new(Vec::new()),
            made: AtomicU64::new(0),
        });
        // Made, then handed back empty: the first command reuses it.
        pool.take().ok().map(drop)?;
        Some(pool)
    })
}

/// Removes the empty cgroups that agents killed before they could clean up left in
/// `parent`: those whose owner (the pid their name starts with) is gone. A cgroup with
/// processes in it is left alone (in a container, its owner may live in another PID
/// namespace); so is one whose owner's pid is taken, by it or another process.
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|name| name.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        // Removing fails while processes are in it: then it stays.
        if std::fs::remove_dir(entry.path()).is_ok() {
            tracing::debug!(cgroup = %entry.path().display(), "removed a stale pids cgroup");
        }
    }
}

fn has_pids_controller(root: &Path) -> bool {
    if root.ends_with("pids") {
        return true;
    }
    std::fs::read_to_string(root.join("cgroup.subtree_control"))
        .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "pids"))
}

/// The `pids` cgroups of one run's commands (one per command running at a time).
///
/// A cgroup is made the first time it is needed, and when its command is over and no
/// process is left in it, it waits here for the next command instead of being removed:
/// making and removing one per command cost the agent more kernel time than the rest of
/// the cgroup's bookkeeping. The idle ones are removed when the run's sandbox goes.
///
/// A process gone from the cgroup may stay counted in `pids.current` for a moment (the
/// kernel releases the first process of a PID namespace late, about a second after
/// bubblewrap exits). Such leftovers are added to the next command's `pids.max`, so that
/// command still gets the full cap for its own processes.
#[derive(Debug)]
pub(crate) struct PidsPool {
    parent: PathBuf,
    max: u32,
    idle: Mutex<Vec<Idle>>,
    made: AtomicU64,
}

/// An emptied cgroup waiting for a command.
#[derive(Debug)]
struct Idle {
    dir: PathBuf,
    files: CgroupFiles,
    /// Refused forks counted in `pids.events` so far.
    hits: u64,
    /// Leftovers `pids.max` was last raised by.
    allowance: u64,
}

impl PidsPool {
    /// The cap of every command.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// An empty cgroup for one command.
    pub(crate) fn take(self: &Arc<Self>) -> io::Result<PidsCgroup> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut cgroup = match idle {
            Some(idle) => {
                let leftovers = read_number(&idle.files.current).unwrap_or(0);
                if leftovers != idle.allowance {
                    let cap = u64::from(self.max) + leftovers;
                    std::fs::write(idle.dir.join("pids.max"), cap.to_string())?;
                }
                PidsCgroup {
                    dir: idle.dir,
                    files: Some(idle.files),
                    pool: None,
                    hits_before: idle.hits,
                    allowance: leftovers,
                }
            }
            None => {
                // Unique across runs too: a run killed before it removed its cgroups
                // leaves them behind, and in a container every agent has the same PID.
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_nanos());
                let name = format!(
                    "{}-{nanos}-{}",
                    std::process::id(),
                    self.made.fetch_add(1, Ordering::Relaxed)
                );
                PidsCgroup::create(&self.parent, &name, self.max)?
            }
        };
        cgroup.pool = Some(Arc::clone(self));
        Ok(cgroup)
    }
}

impl Drop for PidsPool {
    fn drop(&mut self) {
        let idle = match self.idle.get_mut() {
            Ok(idle) => std::mem::take(idle),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        for Idle { dir, files, .. } in idle {
            drop(files);
            if let Err(err) = std::fs::remove_dir(&dir)
                && err.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(cgroup = %dir.display(), error = %err, "could not remove a pids cgroup");
            }
        }
    }
}

/// One command's cgroup. On drop its processes are killed, and once none is left it goes
/// back to its pool (or, without one, or when it cannot be emptied, it is removed).
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
    /// Always there until the cgroup goes back to its pool, with them.
    files: Option<CgroupFiles>,
    pool: Option<Arc<PidsPool>>,
    /// Refused forks counted before this command.
    hits_before: u64,
    /// Leftovers of earlier commands its `pids.max` allows for.
    allowance: u64,
}

/// A cgroup's files every command uses, opened once with the cgroup: a path lookup
/// through `/sys` and a close saved for each, for every command. Counters are read again
/// from offset 0, which makes the kernel write them afresh. `cgroup.procs` is opened anew
/// to be read: cgroup v1 keeps the list of members an open file read first for a second.
#[derive(Debug)]
struct CgroupFiles {
    /// `cgroup.procs`, for writing: the command's first process joins through it.
    join: File,
    /// `pids.current`.
    current: File,
    /// `pids.events`.
    events: File,
}

impl CgroupFiles {
    fn open(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            join: std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?,
            current: File::open(dir.join("pids.current"))?,
            events: File::open(dir.join("pids.events"))?,
        })
    }
}

impl PidsCgroup {
    /// Makes `parent/name` (and `parent`) with `pids.max` = `max`.
    pub(crate) fn create(parent: &Path, name: &str, max: u32) -> io::Result<Self> {
        std::fs::create_dir_all(parent)?;
        let dir = parent.join(name);
        std::fs::create_dir(&dir)?;
        std::fs::write(dir.join("pids.max"), max.to_string())?;
        let files = match CgroupFiles::open(&dir) {
            Ok(files) => files,
            Err(err) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(err);
            }
        };
        Ok(Self {
            dir,
            files: Some(files),
            pool: None,
            hits_before: 0,
            allowance: 0,
        })
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
    pub(crate) fn procs_file(&self) -> io::Result<&File> {
        self.files
            .as_ref()
            .map(|files| &files.join)
            .ok_or_else(|| io::Error::other("the pids cgroup was handed back"))
    }

    /// Kills every process in the cgroup, whatever group or session it is in now:
    /// `cgroup.kill` where the kernel has it (one write), else each member. Returns how
    /// many members there were (0: the cgroup is empty).
    pub(crate) fn kill_members(&self) -> usize {
        let members = self.members();
        if members.is_empty() {
            return 0;
        }
        if std::fs::write(self.dir.join("cgroup.kill"), "1").is_err() {
            for &pid in &members {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        members.len()
    }

    fn add(&self, pid: u32) -> io::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// Whether a fork was refused because the cap was reached, during this command
    /// (`pids.events` counts for every command the cgroup served).
    pub(crate) fn limit_was_hit(&self) -> bool {
        self.refused_forks()
            .is_some_and(|hits| hits > self.hits_before)
    }

    /// `pids.events`' count of forks refused at the cap, for every command so far.
    fn refused_forks(&self) -> Option<u64> {
        self.files
            .as_ref()
            .and_then(|files| max_events(&files.events))
    }

    /// The processes in the cgroup. None when `pids.current` counts no task: that read is
    /// one system call on a kept file, where the list is a file opened afresh for every
    /// read (see `CgroupFiles`). A count above zero may be a leftover the kernel has not
    /// released yet; the list tells.
    fn members(&self) -> Vec<i32> {
        if self
            .files
            .as_ref()
            .is_some_and(|files| read_number(&files.current) == Some(0))
        {
            return Vec::new();
        }
        read_small(&self.dir.join("cgroup.procs"))
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Hands the emptied cgroup back to its pool; false when it has none.
    fn give_back(&mut self) -> bool {
        let Some(pool) = &self.pool else {
            return false;
        };
        // Read now, not when the command's result was made: a process that left the
        // command's group could still fork in between.
        let Some(hits) = self.refused_forks() else {
            return false;
        };
        let Ok(mut idle) = pool.idle.lock() else {
            return false;
        };
        let Some(files) = self.files.take() else {
            return false;
        };
        idle.push(Idle {
            dir: std::mem::take(&mut self.dir),
            files,
            hits,
            allowance: self.allowance,
        });
        true
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        for _ in 0..REMOVE_TRIES {
            let members = self.members();
            for &pid in &members {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if members.is_empty() && self.give_back() {
                return;
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

/// The number of forks refused at the cap, from `pids.events` (`max N`).
fn max_events(events: &File) -> Option<u64> {
    read_counter(events)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("max "))
        .and_then(|count| count.trim().parse().ok())
}

fn read_number(file: &File) -> Option<u64> {
    read_counter(file).ok()?.trim().parse().ok()
}

/// A short cgroup file, read afresh from its start: one system call, as the text (a
/// number, or two lines of them) is far shorter than the buffer and the kernel writes all
/// of it at once.
fn read_counter(file: &File) -> io::Result<String> {
    let mut text = [0u8; 256];
    let read = file.read_at(&mut text, 0)?;
    if read == text.len() {
        return Err(io::Error::other(
            "a cgroup counter file is longer than expected",
        ));
    }
    String::from_utf8(text[..read].to_vec()).map_err(io::Error::other)
}

/// A cgroup file's text. Not `fs::read_to_string`, which first asks the file's size
/// (always 0 for these): one system call less for each of the few reads a command makes.
fn read_small(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut text = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match file.read(&mut chunk)? {
            0 => break,
            read => text.extend_from_slice(&chunk[..read]),
        }
    }
    String::from_utf8(text).map_err(io::Error::other)
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

#[cfg(test)]
#[path = "pids_tests.rs"]
mod tests;
