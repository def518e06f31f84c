//! Landlock plus seccomp: the sandbox where bubblewrap cannot run (no unprivileged user
//! namespaces, as in many containers and hardened hosts).
//!
//! Both are applied by the command's own process between `fork` and `exec`
//! ([`Confinement::apply`]), so they need no privilege and no helper program; every
//! process the command starts inherits them, and neither can be lifted.
//!
//! - Landlock (an allow-list of file hierarchies): read and execute on the whole file
//!   system except the hidden paths (credential folders, configured ones such as the data
//!   folder, and `/tmp`, `/var/tmp` and `/dev/shm`, where other runs keep their files);
//!   every right on the workspace and on a private temporary folder made for the command
//!   (its `TMPDIR`); writes to `/dev` nodes (`/dev/null`). Landlock cannot deny below an
//!   allowed folder, so a folder holding a hidden path is allowed child by child
//!   ([`readable_roots`]); `/proc` is allowed entry by entry but for the agent's and its
//!   ancestors' folders (their `environ` holds secrets, and Landlock's ptrace rule does
//!   not cover `/proc` files). Its scopes (ABI 6) keep the command from signalling
//!   processes outside it or reaching their abstract Unix sockets.
//! - seccomp: without network, `socket()` of any family but `AF_UNIX` fails with
//!   "Network is unreachable" (so programs say what bubblewrap's empty network namespace
//!   would make them say); `io_uring`, which could open sockets past that filter, is
//!   refused always.
//!
//! What this mode does not give, compared with bubblewrap: a PID namespace (other
//! processes are listed in `/proc`; only the agent's lineage is closed) and a literal
//! private `/tmp` (commands get `TMPDIR` instead; `/tmp` itself is closed); and the
//! command's own `/proc/self` files are not readable (they did not exist when its rules
//! were made; `readlink /proc/self/exe` still works). And
//! Landlock rights on the workspace extend to its `.git`, so its hooks and config are
//! kept by restoring them after each command ([`GitGuard`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use super::NetworkAccess;
use super::git_dirs::guarded_git_dirs;

/// The newest Landlock ABI whose rights are asked for; older kernels enforce what they
/// know (best effort), and a kernel without Landlock makes the sandbox unusable.
const ABI_WANTED: ABI = ABI::V6;

/// `CAP_SYS_PTRACE`'s number (linux/capability.h), which the libc crate does not name.
const CAP_SYS_PTRACE: nix::libc::c_ulong = 19;

/// Folders always closed to commands under Landlock: shared scratch space where other
/// runs and users keep their files.
const ALWAYS_HIDDEN: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// The folders and files commands may read: the whole tree from `/`, minus `hidden`
/// (and [`ALWAYS_HIDDEN`]). A folder that holds a hidden path is replaced by its
/// children, recursively, since Landlock can only allow.
pub(super) fn readable_roots(hidden: &[PathBuf]) -> Vec<PathBuf> {
    roots_closing(hidden, true)
}

/// What [`readable_roots`] would allow outside `/proc`: a file or folder appearing in a
/// folder allowed child by child changes it. The run's sandbox server is confined once,
/// so when this changes, a new server is started, which reads the new entry.
pub(super) fn readable_outside_proc(hidden: &[PathBuf]) -> Vec<PathBuf> {
    roots_closing(hidden, false)
}

fn roots_closing(hidden: &[PathBuf], lineage: bool) -> Vec<PathBuf> {
    let mut closed: Vec<PathBuf> = hidden.to_vec();
    if lineage {
        closed.extend(own_lineage().map(|pid| PathBuf::from(format!("/proc/{pid}"))));
    }
    closed.extend(
        ALWAYS_HIDDEN
            .iter()
            .filter_map(|path| std::fs::canonicalize(path).ok()),
    );
    let mut roots = Vec::new();
    split(Path::new("/"), &closed, &mut roots, 0);
    roots.sort();
    roots.dedup();
    roots
}

/// This process and its ancestors (the agent, the service that started it...), whose
/// `/proc/<pid>` folders commands must not read: `environ` there holds their secrets,
/// and Landlock's ptrace rule does not cover it. (Their `/proc/self` is their own, and
/// not readable either: `/proc` is allowed entry by entry, as it was when the command
/// started.)
fn own_lineage() -> impl Iterator<Item = u32> {
    std::iter::successors(Some(std::process::id()), |pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let parent: u32 = status
            .lines()
            .find_map(|line| line.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()?;
        (parent > 1).then_some(parent)
    })
    .take(64)
}

/// How deep links may lead the split (a link to an ancestor would loop).
const MAX_DEPTH: usize = 24;

fn split(dir: &Path, closed: &[PathBuf], into: &mut Vec<PathBuf>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // A link is judged where it points (Landlock follows it too); anything else is
        // already canonical, `dir` being so (and this saves a walk per `/proc` entry).
        let is_link = entry.file_type().is_ok_and(|kind| kind.is_symlink());
        let target = if is_link {
            match std::fs::canonicalize(entry.path()) {
                Ok(target) => target,
                Err(_) => continue,
            }
        } else {
            entry.path()
        };
        if closed.iter().any(|hidden| target.starts_with(hidden)) {
            continue;
        }
        if closed.iter().any(|hidden| hidden.starts_with(&target)) && target.is_dir() {
            split(&target, closed, into, depth + 1);
        } else {
            into.push(target);
        }
    }
}

/// The decided Landlock sandbox of a run: what every command gets.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The hidden paths; what is readable is worked out from them when the run's sandbox
    /// server starts, and again when it changes ([`readable_outside_proc`]), so a file
    /// made since (in a folder allowed child by child) is readable too.
    pub hidden: Arc<Vec<PathBuf>>,
    pub network: NetworkAccess,
}

/// What one command is confined with, built before the fork; [`Self::apply`] runs in
/// the child.
pub(crate) struct Confinement {
    ruleset: Option<RulesetCreated>,
    filter: BpfProgram,
}

impl std::fmt::Debug for Confinement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confinement")
            .field("seccomp_instructions", &self.filter.len())
            .finish_non_exhaustive()
    }
}

impl Confinement {
    /// The rules for a command that may write `writable` (the workspace and its private
    /// temporary folder).
    pub(super) fn new(plan: &Plan, writable: &[&Path]) -> io::Result<Self> {
        let ruleset = ruleset(plan, writable).map_err(io::Error::other)?;
        let filter = seccomp_filter(plan.network)?;
        Ok(Self {
            ruleset: Some(ruleset),
            filter,
        })
    }

    /// Confines the calling process (the forked child, just before `exec`). Only system
    /// calls: no allocation unless it fails. A kernel that enforces nothing is an error,
    /// so the command never runs unconfined.
    pub(crate) fn apply(&mut self) -> io::Result<()> {
        let ruleset = self
            .ruleset
            .take()
            .ok_or_else(|| io::Error::other("the Landlock rules were already applied"))?;
        let status = ruleset.restrict_self().map_err(io::Error::other)?;
        if status.ruleset == RulesetStatus::NotEnforced {
            return Err(io::Error::other("this kernel does not enforce Landlock"));
        }
        seccompiler::apply_filter(&self.filter).map_err(io::Error::other)
    }
}

fn ruleset(plan: &Plan, writable: &[&Path]) -> Result<RulesetCreated, landlock::RulesetError> {
    let read = AccessFs::from_read(ABI_WANTED);
    let devices = read | AccessFs::WriteFile | AccessFs::IoctlDev | AccessFs::Truncate;
    Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI_WANTED))?
        .scope(Scope::Signal | Scope::AbstractUnixSocket)?
        .create()?
        .add_rules(path_beneath_rules(readable_roots(&plan.hidden), read))?
        .add_rules(path_beneath_rules(["/dev"], devices))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(ABI_WANTED)))
}

/// The seccomp program: `io_uring` refused always; without network, `socket()` of any
/// family but `AF_UNIX` too.
fn seccomp_filter(network: NetworkAccess) -> io::Result<BpfProgram> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| io::Error::other("seccomp filters are not built for this machine"))?;
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> = [
        nix::libc::SYS_io_uring_setup,
        nix::libc::SYS_io_uring_enter,
        nix::libc::SYS_io_uring_register,
    ]
    .into_iter()
    .map(|call| (call, Vec::new()))
    .collect();
    if network != NetworkAccess::On {
        let not_unix = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            nix::libc::AF_UNIX as u64,
        )
        .map_err(io::Error::other)?;
        let rule = SeccompRule::new(vec![not_unix]).map_err(io::Error::other)?;
        rules.insert(nix::libc::SYS_socket, vec![rule]);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(nix::libc::ENETUNREACH as u32),
        arch,
    )
    .map_err(io::Error::other)?;
    filter.try_into().map_err(io::Error::other)
}

/// Runs `confine` in the child between fork and exec. The one `unsafe` of the sandbox:
/// `confine` must only make system calls on memory prepared before the fork (no
/// allocation, no lock), which [`Confinement::apply`] and a write to an open cgroup file
/// do.
///
/// Before `confine`, the child drops `CAP_SYS_PTRACE` from its bounding set, so what it
/// runs lacks it even as root (one more wall around other processes' memory).
#[allow(unsafe_code)]
pub(crate) fn confine_before_exec<F>(command: &mut std::process::Command, mut confine: F)
where
    F: FnMut() -> io::Result<()> + Send + Sync + 'static,
{
    use std::os::unix::process::CommandExt;
    let hook = move || {
        drop_ptrace_capability();
        confine()
    };
    // SAFETY: see above; the hook is async-signal-safe.
    unsafe {
        command.pre_exec(hook);
    }
}

/// Drops `CAP_SYS_PTRACE` from this process's bounding set, so what it runs lacks it
/// even as root. Without `CAP_SETPCAP` this fails, and then there was none to drop.
#[allow(unsafe_code)]
pub(super) fn drop_ptrace_capability() {
    // SAFETY: a prctl with integer arguments (async-signal-safe).
    let _ = unsafe { nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) };
}

/// Whether Landlock and seccomp work here: `true` run under them. The error says why not.
pub(super) fn probe(plan: &Plan) -> Result<(), String> {
    let mut confinement =
        Confinement::new(plan, &[]).map_err(|err| format!("cannot build the rules: {err}"))?;
    let mut command = std::process::Command::new("true");
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    confine_before_exec(&mut command, move || confinement.apply());
    let status = command.status().map_err(|err| err.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("a confined `true` exited with {status}"))
    }
}

/// `.git/hooks` and `.git/config` (the workspace's and its submodules', see
/// [`guarded_git_dirs`]) as they were before a command, put back after it.
///
/// Under bubblewrap they are bound read-only. Landlock cannot take back a right below a
/// folder it granted (the workspace), so here a command could plant a hook that git
/// would later run outside the sandbox; instead, whatever the command changed there is
/// undone when it ends (all its processes are dead by then), and the result says so.
#[derive(Debug)]
pub(crate) struct GitGuard {
    dirs: Vec<GuardedDir>,
}

/// One git directory's config and hooks as recorded.
#[derive(Debug)]
struct GuardedDir {
    git: PathBuf,
    config: Option<Vec<u8>>,
    hooks: Vec<(PathBuf, Vec<u8>, u32)>,
}

impl GitGuard {
    /// Records the config and hooks of the workspace's git directories; `None` without
    /// a `.git` folder.
    pub(crate) fn record(workspace: &Path) -> Option<Self> {
        let dirs: Vec<GuardedDir> = guarded_git_dirs(workspace)
            .into_iter()
            .map(|git| {
                let _ = std::fs::create_dir_all(git.join("hooks"));
                GuardedDir {
                    config: std::fs::read(git.join("config")).ok(),
                    hooks: hook_files(&git.join("hooks")),
                    git,
                }
            })
            .collect();
        (!dirs.is_empty()).then_some(Self { dirs })
    }

    /// Puts back what changed; returns whether anything had.
    pub(crate) fn restore(&self) -> bool {
        // Every directory is restored, whatever the others showed.
        let mut changed = false;
        for dir in &self.dirs {
            changed |= dir.restore();
        }
        changed
    }
}

impl GuardedDir {
    fn restore(&self) -> bool {
        use std::os::unix::ffi::OsStringExt;
        use std::os::unix::fs::PermissionsExt;
        let mut changed = false;
        let config_path = self.git.join("config");
        let config_now = std::fs::read(&config_path).ok();
        if config_now != self.config {
            changed = true;
            let _ = std::fs::remove_file(&config_path);
            if let Some(bytes) = &self.config {
                let _ = std::fs::write(&config_path, bytes);
            }
        }
        let hooks = self.git.join("hooks");
        let now = hook_files(&hooks);
        if now != self.hooks {
            changed = true;
            let _ = std::fs::remove_dir_all(&hooks);
            let _ = std::fs::remove_file(&hooks);
            let _ = std::fs::create_dir_all(&hooks);
            for (rel, bytes, mode) in &self.hooks {
                let path = hooks.join(rel);
                if let Some(parent) = path.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                if *mode == LINK {
                    let target = std::ffi::OsString::from_vec(bytes.clone());
                    let _ = std::os::unix::fs::symlink(target, &path);
                } else if std::fs::write(&path, bytes).is_ok() {
                    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode));
                }
            }
        }
        changed
    }
}

/// The mode recorded for a link, whose "content" is its target.
const LINK: u32 = u32::MAX;

/// Every file and link under `hooks` (relative path, content, mode), sorted.
fn hook_files(hooks: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    let mut pending = vec![hooks.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let rel = path.strip_prefix(hooks).unwrap_or(&path).to_path_buf();
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                files.push((rel, bytes, meta.permissions().mode()));
            } else if let Ok(target) = std::fs::read_link(&path) {
                files.push((rel, target.into_os_string().into_encoded_bytes(), LINK));
            }
        }
    }
    files.sort();
    files
}
