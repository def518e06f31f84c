//! Starting a command from the sandbox server without copying the server.
//!
//! The command needs a few system calls between its creation and its program (the
//! parent-death signal, joining its `pids` cgroup, its own process group), and std's
//! `Command` runs such a hook only after a full `fork`: the server's page tables copied,
//! then a copy-on-write fault for every page the server touched before the child's
//! `exec`. That was most of the server's CPU per command. Here the child is a
//! `vfork`-style clone (`CLONE_VM | CLONE_VFORK`, as `posix_spawn` does it): it runs on a
//! stack of its own in the server's memory while the server waits, makes those calls,
//! and execs. Everything it touches is prepared beforehand (C strings, pointer arrays,
//! descriptors); it calls only async-signal-safe libc functions, allocates nothing, and
//! reports a failed step through the shared memory.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::libc::{self, c_char, c_int, c_void};

/// The child's stack: a few libc calls deep, plus room for a lazy symbol lookup.
const STACK_BYTES: usize = 64 * 1024;

/// What a command is started with.
pub(super) struct Command<'a> {
    pub program: &'a OsStr,
    pub args: &'a [OsString],
    pub cwd: &'a Path,
    pub env: &'a [(OsString, OsString)],
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// A `cgroup.procs` the command writes itself into before it runs.
    pub procs: Option<RawFd>,
}

/// Starts commands; keeps the children's stack between them.
pub(super) struct Spawner {
    stack: Vec<u8>,
}

/// The step of the child that failed, as the server reports it.
#[derive(Clone, Copy)]
#[repr(i32)]
enum Step {
    None = 0,
    DeathSignal = 1,
    Group = 2,
    Stdio = 3,
    Chdir = 4,
    Cgroup = 5,
    Exec = 6,
}

/// What the child reads, and where it writes what failed (shared memory).
struct ChildArgs {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    stdio: [(RawFd, RawFd); 3],
    procs: RawFd,
    parent: libc::pid_t,
    failed_step: AtomicI32,
    failed_errno: AtomicI32,
}

impl Spawner {
    pub(super) fn new() -> Self {
        Self {
            stack: vec![0; STACK_BYTES],
        }
    }

    /// Starts `command` as a new process group; returns its pid. Blocks until the child
    /// has started its program (or failed to).
    pub(super) fn spawn(&mut self, command: &Command<'_>) -> io::Result<i32> {
        let path = c_string(resolve(command.program, command.env)?.as_os_str())?;
        let mut argv_owned = vec![c_string(command.program)?];
        for arg in command.args {
            argv_owned.push(c_string(arg)?);
        }
        let mut envp_owned = Vec::with_capacity(command.env.len());
        for (name, value) in command.env {
            let mut entry = Vec::with_capacity(name.len() + value.len() + 1);
            entry.extend_from_slice(name.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            envp_owned.push(CString::new(entry).map_err(|_| nul_error())?);
        }
        let argv = pointers(&argv_owned);
        let envp = pointers(&envp_owned);
        let cwd = c_string(command.cwd.as_os_str())?;
        let args = ChildArgs {
            path: path.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            cwd: cwd.as_ptr(),
            stdio: [(command.stdin, 0), (command.stdout, 1), (command.stderr, 2)],
            procs: command.procs.unwrap_or(-1),
            parent: std::process::id().try_into().unwrap_or(0),
            failed_step: AtomicI32::new(Step::None as i32),
            failed_errno: AtomicI32::new(0),
        };
        let pid = clone_child(&mut self.stack, &args)?;
        let step = args.failed_step.load(Ordering::Acquire);
        if step == Step::None as i32 {
            return Ok(pid);
        }
        // It has exited already: reaped here, so no status of it is reported.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        let err = io::Error::from_raw_os_error(args.failed_errno.load(Ordering::Acquire));
        Err(match step {
            s if s == Step::Exec as i32 => err,
            s if s == Step::Chdir as i32 => io::Error::new(
                err.kind(),
                format!("cannot enter the working folder: {err}"),
            ),
            s if s == Step::Cgroup as i32 => {
                io::Error::other(format!("cannot join the command's pids cgroup: {err}"))
            }
            _ => io::Error::other(format!("cannot prepare the command's process: {err}")),
        })
    }
}

/// Clones the child on `stack` with `args` and waits until it has exec'd or exited.
fn clone_child(stack: &mut [u8], args: &ChildArgs) -> io::Result<i32> {
    // SAFETY: the signal sets are plain data initialised by libc before use. The child
    // runs `child` on `stack`, which outlives it (the server is suspended until the
    // child's `exec` or exit: `CLONE_VFORK`), and reads `args`, which lives on this
    // frame for as long. Every signal is blocked around the clone, so no handler of
    // the server runs in the child on the shared memory.
    #[allow(unsafe_code)]
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let top = stack.as_mut_ptr().add(stack.len());
        let top = top.sub(top as usize % 16);
        let pid = libc::clone(
            child,
            top.cast::<c_void>(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(args).cast_mut().cast::<c_void>(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        Ok(pid)
    }
}

/// The child: its own group, death with the server, its stdio, folder and cgroup,
/// default signal handling, then the program. Async-signal-safe calls only.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` of `clone_child`, alive while this runs; the
    // pointers in it are valid NUL-terminated strings and NULL-terminated arrays.
    #[allow(unsafe_code)]
    unsafe {
        let args = &*arg.cast::<ChildArgs>();
        // The server ignores SIGPIPE (Rust's runtime does); a command must not inherit it.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        // Bash dies with the server (under Landlock nothing else would end it if the
        // agent were killed; the last program bash `exec`s keeps this).
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(args, Step::DeathSignal);
        }
        // The server died before the line above: nothing would kill this one with it.
        if libc::getppid() != args.parent {
            libc::_exit(127);
        }
        if libc::setpgid(0, 0) != 0 {
            fail(args, Step::Group);
        }
        for (from, to) in args.stdio {
            let done = if from == to {
                libc::fcntl(from, libc::F_SETFD, 0)
            } else {
                libc::dup2(from, to)
            };
            if done < 0 {
                fail(args, Step::Stdio);
            }
        }
        if libc::chdir(args.cwd) != 0 {
            fail(args, Step::Chdir);
        }
        // "0": the writer itself, so the command starts inside its cap.
        if args.procs >= 0 && libc::write(args.procs, b"0".as_ptr().cast(), 1) != 1 {
            fail(args, Step::Cgroup);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(args.path, args.argv, args.envp);
        fail(args, Step::Exec)
    }
}

/// Records the failed step and `errno` for the server, and exits.
fn fail(args: &ChildArgs, step: Step) -> ! {
    args.failed_errno
        .store(nix::errno::Errno::last_raw(), Ordering::Release);
    args.failed_step.store(step as i32, Ordering::Release);
    // SAFETY: ends the child without running anything of the server's (no atexit
    // handlers, no flushing of buffers it shares).
    #[allow(unsafe_code)]
    unsafe {
        libc::_exit(127)
    }
}

/// `program` as a path: a bare name is looked up on the command's `PATH` (as `execvp`
/// would, but here, before the child exists).
fn resolve(program: &OsStr, env: &[(OsString, OsString)]) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = env
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"), |(_, value)| {
            value.as_os_str()
        });
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| nul_error())
}

fn nul_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "a command line or environment entry holds a NUL byte",
    )
}

/// A NULL-terminated array of the strings' pointers.
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}
