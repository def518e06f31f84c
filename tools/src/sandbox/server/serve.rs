//! The sandbox server itself: `agent-rs sandbox-server`, run once per run inside the
//! sandbox (under bubblewrap, or confined by Landlock and seccomp here before it
//! serves), starting the run's commands on request.
//!
//! Requests arrive on stdin, answers leave on stdout (both Unix sockets to the agent,
//! see [`super::protocol`]). Each command is forked as a new process group with the
//! descriptors the request handed over as its stdout and stderr, so the agent captures
//! its output as it would a child's; a thread per command waits for it and reports its
//! status. At end of stream (the agent closed its side, or died) the server kills the
//! groups still running and exits. It asks the kernel to kill it when its parent dies
//! (bubblewrap, or the agent's thread that started it), and makes itself not dumpable, so
//! a command, which runs as the same user, can neither read its memory nor attach to it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::protocol::{Request, RequestReader, Response, ServerUsage, send_response};
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
    let requests = UnixStream::from(std::io::stdin().as_fd_owned()?);
    let answers = Arc::new(Mutex::new(UnixStream::from(
        std::io::stdout().as_fd_owned()?,
    )));
    // Nothing else may write to the answers stream.
    redirect_stdout_to_null()?;
    answer(&answers, &Response::Ready)?;
    let running: Arc<Mutex<HashMap<u64, Pid>>> = Arc::default();
    let mut reader = RequestReader::new(requests);
    while let Some((request, fds)) = reader.next()? {
        match request {
            Request::Spawn {
                id,
                program,
                args,
                cwd,
                env,
                join_cgroup,
            } => {
                let spawned = spawn(&program, &args, &cwd, &env, join_cgroup, fds);
                start_waiter(id, spawned, &answers, &running)?;
            }
            Request::Kill { id, pgid, mark } => {
                kill_command(pgid, &mark);
                answer(&answers, &Response::Killed { id })?;
            }
        }
    }
    // The agent is gone or done: so are its commands.
    if let Ok(running) = running.lock() {
        for pgid in running.values() {
            let _ = killpg(*pgid, Signal::SIGKILL);
        }
    }
    let _ = answer(
        &answers,
        &Response::Finished {
            usage: ServerUsage::now(),
        },
    );
    Ok(())
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

fn answer(answers: &Mutex<UnixStream>, response: &Response) -> io::Result<()> {
    let socket = answers
        .lock()
        .map_err(|_| io::Error::other("the answers stream lock is poisoned"))?;
    send_response(&socket, response)
}

fn spawn(
    program: &OsString,
    args: &[OsString],
    cwd: &PathBuf,
    env: &[(OsString, OsString)],
    join_cgroup: bool,
    fds: Vec<OwnedFd>,
) -> io::Result<std::process::Child> {
    let mut fds = fds.into_iter();
    let (Some(stdout), Some(stderr)) = (fds.next(), fds.next()) else {
        return Err(io::Error::other(
            "the request came without its output pipes",
        ));
    };
    let procs = if join_cgroup { fds.next() } else { None };
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    let raw_procs = procs.as_ref().map(AsRawFd::as_raw_fd);
    // SAFETY: system calls only, on a descriptor opened before the fork (kept open by
    // `procs`, alive until `spawn` returns).
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            // Bash dies with the server (under Landlock nothing else would end it if
            // the agent were killed; the last program bash `exec`s keeps this).
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if let Some(raw) = raw_procs {
                // "0": the writer itself, so the command starts inside its cap.
                let procs = std::os::fd::BorrowedFd::borrow_raw(raw);
                nix::unistd::write(procs, b"0")?;
            }
            Ok(())
        });
    }
    let child = command.spawn();
    drop(procs);
    child
}

fn start_waiter(
    id: u64,
    spawned: io::Result<std::process::Child>,
    answers: &Arc<Mutex<UnixStream>>,
    running: &Arc<Mutex<HashMap<u64, Pid>>>,
) -> io::Result<()> {
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            let message = if err.kind() == io::ErrorKind::NotFound {
                "the program was not found".to_string()
            } else {
                err.to_string()
            };
            return answer(answers, &Response::Failed { id, message });
        }
    };
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    if let Ok(mut running) = running.lock() {
        running.insert(id, Pid::from_raw(pid));
    }
    answer(answers, &Response::Started { id, pid })?;
    let answers = Arc::clone(answers);
    let running = Arc::clone(running);
    std::thread::Builder::new()
        .name(format!("command-{id}"))
        .stack_size(64 * 1024)
        .spawn(move || {
            let status = child.wait().map_or(-1, |status| status.into_raw());
            if let Ok(mut running) = running.lock() {
                running.remove(&id);
            }
            let _ = answer(
                &answers,
                &Response::Exited {
                    id,
                    status,
                    usage: ServerUsage::now(),
                },
            );
        })?;
    Ok(())
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
