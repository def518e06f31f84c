//! The sandbox server itself: `agent-rs sandbox-server`, run once per run inside the
//! sandbox (under bubblewrap, or confined by Landlock and seccomp here before it
//! serves), starting the run's commands on request.
//!
//! Requests arrive on stdin, answers leave on stdout (both Unix sockets to the agent,
//! see [`super::protocol`]). Each command is started ([`super::spawn`]) as a new process
//! group with the descriptors the request handed over as its stdout and stderr, so the
//! agent captures its output as it would a child's. The server has one thread: it waits
//! for a request or a command's end at once (`SIGCHLD` read from a `signalfd`), and
//! reports each end with the command's wait status. At end of stream (the agent closed its side, or died) the server kills the
//! groups still running and exits. It asks the kernel to kill it when its parent dies
//! (bubblewrap, or the agent's thread that started it), and makes itself not dumpable, so
//! a command, which runs as the same user, can neither read its memory nor attach to it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::protocol::{Request, RequestReader, Response, ServerUsage, send_response};
use super::spawn::{self, Spawner};
use crate::sandbox::NetworkAccess;
use crate::sandbox::landlock::{Confinement, Plan, drop_ptrace_capability};
use crate::shell::escaped;

/// How the server confines itself before it serves, from its arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ServeArgs {
    /// `--landlock`: confine with Landlock and seccomp (otherwise bubblewrap did).
    pub landlock: bool,
    /// `--network on|off`.
    pub network_on: bool,
    /// `--writable PATH`, repeated.
    pub writable: Vec<PathBuf>,
    /// `--hidden PATH`, repeated.
    pub hidden: Vec<PathBuf>,
}

impl ServeArgs {
    pub(super) fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if self.landlock {
            args.push("--landlock".into());
        }
        args.extend([
            "--network".into(),
            if self.network_on { "on" } else { "off" }.into(),
        ]);
        for path in &self.writable {
            args.extend(["--writable".into(), path.clone().into_os_string()]);
        }
        for path in &self.hidden {
            args.extend(["--hidden".into(), path.clone().into_os_string()]);
        }
        args
    }

    pub(super) fn parse(args: &[OsString]) -> io::Result<Self> {
        let mut parsed = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next().cloned().ok_or_else(|| {
                    io::Error::other(format!("`{}` needs a value", arg.to_string_lossy()))
                })
            };
            match arg.to_str() {
                Some("--landlock") => parsed.landlock = true,
                Some("--network") => parsed.network_on = value()? == "on",
                Some("--writable") => parsed.writable.push(value()?.into()),
                Some("--hidden") => parsed.hidden.push(value()?.into()),
                _ => {
                    return Err(io::Error::other(format!(
                        "unknown argument `{}`",
                        arg.to_string_lossy()
                    )));
                }
            }
        }
        Ok(parsed)
    }
}

/// Serves requests on stdin until end of stream; see the module docs.
pub fn run_sandbox_server(args: &[OsString]) -> io::Result<()> {
    let args = ServeArgs::parse(args)?;
    guard_self();
    if args.landlock {
        let plan = Plan {
            hidden: Arc::new(args.hidden.clone()),
            network: if args.network_on {
                NetworkAccess::On
            } else {
                NetworkAccess::Off
            },
        };
        let writable: Vec<&std::path::Path> = args.writable.iter().map(PathBuf::as_path).collect();
        drop_ptrace_capability();
        Confinement::new(&plan, &writable)?.apply()?;
    }
    // Children's ends arrive here as readable data, not as a signal (the server has one
    // thread, which waits for requests and ends alike).
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    sigchld.thread_block().map_err(io::Error::from)?;
    let ended = SignalFd::with_flags(&sigchld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(io::Error::from)?;
    let requests = UnixStream::from(std::io::stdin().as_fd_owned()?);
    let answers = UnixStream::from(std::io::stdout().as_fd_owned()?);
    // Nothing else may write to the answers stream.
    redirect_stdout_to_null()?;
    let mut server = Server {
        answers,
        running: HashMap::new(),
        spawner: Spawner::new(),
        null: std::fs::File::open("/dev/null")?.into(),
    };
    server.answer(&Response::Ready)?;
    let mut reader = RequestReader::new(requests);
    loop {
        let (request_ready, ended_ready) = {
            let mut fds = [
                PollFd::new(reader.socket().as_fd(), PollFlags::POLLIN),
                PollFd::new(ended.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(err) => return Err(err.into()),
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|events| !events.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if ended_ready {
            while let Ok(Some(_)) = ended.read_signal() {}
            server.reap()?;
        }
        if request_ready {
            if reader.fill()? == 0 {
                break;
            }
            while let Some((request, fds)) = reader.take()? {
                server.handle(request, fds)?;
            }
        }
    }
    // The agent is gone or done: so are its commands.
    for (pgid, _) in server.running.values() {
        let _ = killpg(*pgid, Signal::SIGKILL);
    }
    let _ = server.answer(&Response::Finished {
        usage: ServerUsage::now(),
    });
    Ok(())
}

/// The server's state: the answers stream and the commands running.
struct Server {
    answers: UnixStream,
    /// Running commands by pid: their group and request id.
    running: HashMap<i32, (Pid, u64)>,
    spawner: Spawner,
    /// Every command's stdin.
    null: OwnedFd,
}

impl Server {
    fn answer(&self, response: &Response) -> io::Result<()> {
        send_response(&self.answers, response)
    }

    fn handle(&mut self, request: Request, fds: Vec<OwnedFd>) -> io::Result<()> {
        match request {
            Request::Spawn {
                id,
                program,
                args,
                cwd,
                env,
                join_cgroup,
            } => {
                let mut fds = fds.into_iter();
                let (Some(stdout), Some(stderr)) = (fds.next(), fds.next()) else {
                    return self.answer(&Response::Failed {
                        id,
                        message: "the request came without its output pipes".to_string(),
                    });
                };
                let procs = if join_cgroup { fds.next() } else { None };
                let spawned = self.spawner.spawn(&spawn::Command {
                    program: &program,
                    args: &args,
                    cwd: &cwd,
                    env: &env,
                    stdin: self.null.as_raw_fd(),
                    stdout: stdout.as_raw_fd(),
                    stderr: stderr.as_raw_fd(),
                    procs: procs.as_ref().map(AsRawFd::as_raw_fd),
                });
                // The command has its own copies now.
                drop((stdout, stderr, procs));
                match spawned {
                    Ok(pid) => {
                        self.running.insert(pid, (Pid::from_raw(pid), id));
                        self.answer(&Response::Started { id, pid })
                    }
                    Err(err) => {
                        let message = if err.kind() == io::ErrorKind::NotFound {
                            "the program was not found".to_string()
                        } else {
                            err.to_string()
                        };
                        self.answer(&Response::Failed { id, message })
                    }
                }
            }
            Request::Kill { id, pgid, mark } => {
                kill_command(pgid, &mark);
                self.answer(&Response::Killed { id })
            }
        }
    }

    /// Reports every command that has ended.
    fn reap(&mut self) -> io::Result<()> {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        loop {
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, (code & 0xff) << 8),
                Ok(WaitStatus::Signaled(pid, signal, core)) => {
                    (pid, signal as i32 | if core { 0x80 } else { 0 })
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return Ok(()),
                // Stopped or continued: not an end (not asked for, in any case).
                Ok(_) => continue,
            };
            if let Some((_, id)) = self.running.remove(&pid.as_raw()) {
                self.answer(&Response::Exited {
                    id,
                    status,
                    usage: ServerUsage::now(),
                })?;
            }
        }
    }
}

/// Dies with its parent; not dumpable (see the module docs).
fn guard_self() {
    use nix::sys::prctl;
    let parent = nix::unistd::getppid();
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    let _ = prctl::set_dumpable(false);
    // The parent may have died before the request above: then nobody will read.
    if nix::unistd::getppid() != parent {
        std::process::exit(1);
    }
}

trait StdioFd {
    fn as_fd_owned(&self) -> io::Result<OwnedFd>;
}

impl<T: std::os::fd::AsFd> StdioFd for T {
    /// A duplicate of the stream's descriptor, owned (the original stays open as the
    /// standard stream, then is pointed at `/dev/null`).
    fn as_fd_owned(&self) -> io::Result<OwnedFd> {
        self.as_fd().try_clone_to_owned()
    }
}

fn redirect_stdout_to_null() -> io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    nix::unistd::dup2_stdout(&null).map_err(io::Error::from)
}

/// Kills a command's group, then the processes that left it (its mark, read from this
/// sandbox's own `/proc`: only the run's processes are there).
fn kill_command(pgid: i32, mark: &str) {
    let pgid = Pid::from_raw(pgid);
    let _ = killpg(pgid, Signal::SIGKILL);
    escaped::kill_marked(mark, escaped::PidWindow::from(pgid.as_raw().unsigned_abs()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let args = ServeArgs {
            landlock: true,
            network_on: false,
            writable: vec!["/ws".into(), "/tmp/x".into()],
            hidden: vec!["/root/.ssh".into()],
        };
        assert_eq!(ServeArgs::parse(&args.to_args()).unwrap(), args);
        assert!(ServeArgs::parse(&["--bogus".into()]).is_err());
    }
}
