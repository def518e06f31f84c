//! Starting a sandbox server's process: the thread that spawns, waits for and reaps it
//! (see [`super::client`]'s docs), and the wait for its first answer.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::sync::oneshot;

use super::client::ReadyServer;
use super::protocol::{self, Response};
use super::usage;

/// How long a server may take to confine itself and say it is ready.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A server process just spawned, its answers not yet read.
#[derive(Debug)]
pub(crate) struct SpawnedServer {
    pub(super) requests: UnixStream,
    pub(super) answers: UnixStream,
    pub(super) book: usage::Page,
    pub(super) exit_rx: oneshot::Receiver<ServerExit>,
    pub(super) pid: u32,
}

impl SpawnedServer {
    /// Spawns `argv` as a server, with its thread (see the module docs); nothing of the
    /// runtime is needed yet.
    pub(crate) fn spawn(argv: Vec<OsString>) -> io::Result<Self> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::other("no sandbox server program"))?;
        let (requests, server_requests) = UnixStream::pair()?;
        let (answers, server_answers) = UnixStream::pair()?;
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir("/")
            .stdin(Stdio::from(OwnedFd::from(server_requests)))
            .stdout(Stdio::from(OwnedFd::from(server_answers)))
            .stderr(Stdio::piped());
        let book = usage::register();
        let (exit_tx, exit_rx) = oneshot::channel();
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        if let Err(err) = std::thread::Builder::new()
            .name("sandbox-server".to_string())
            .spawn(move || watch_server(command, pid_tx, exit_tx, book))
        {
            book.reaped();
            return Err(err);
        }
        let pid = pid_rx
            .recv()
            .map_err(|_| io::Error::other("the sandbox server's thread ended"))??;
        Ok(Self {
            requests,
            answers,
            book,
            exit_rx,
            pid,
        })
    }

    /// Waits, blocking the thread, until the server says it is ready; the error is why
    /// it stopped instead (bubblewrap's own explanation when the sandbox could not be
    /// made). For a server started before the runtime runs (the run's first, which
    /// doubles as the check that the sandbox works here).
    pub(crate) fn wait_ready_blocking(mut self) -> Result<ReadyServer, String> {
        let first = self
            .answers
            .set_read_timeout(Some(START_TIMEOUT))
            .and_then(|()| protocol::read_response_blocking(&mut self.answers));
        match first {
            Ok(Some(Response::Ready)) => {
                if let Err(err) = self.answers.set_read_timeout(None) {
                    kill_pid(self.pid);
                    return Err(format!("the sandbox server's answers: {err}"));
                }
                Ok(ReadyServer::new(self))
            }
            Ok(Some(other)) => {
                kill_pid(self.pid);
                Err(format!(
                    "the sandbox server answered {other:?} before it was ready"
                ))
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                kill_pid(self.pid);
                Err(format!(
                    "the sandbox server was not ready within {}s",
                    START_TIMEOUT.as_secs()
                ))
            }
            Ok(None) | Err(_) => {
                // It stopped: its thread has its stderr and status.
                drop(self.requests);
                Err(match wait_for_exit(&mut self.exit_rx) {
                    Some(exit) => exit_reason(&exit),
                    None => "the sandbox server's thread ended".to_string(),
                })
            }
        }
    }
}

pub(super) fn kill_pid(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// What a server left when it exited.
#[derive(Debug)]
pub(super) struct ServerExit {
    pub(super) stderr: String,
    pub(super) status: io::Result<ExitStatus>,
}

/// The answers socket, non-blocking and registered with the runtime.
pub(super) fn on_runtime(answers: UnixStream) -> io::Result<tokio::net::UnixStream> {
    answers.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(answers)
}

/// The server's thread: starts it, waits for it to exit and reaps it. `pid_tx` gets the
/// pid (or why it could not start), `exit_tx` its stderr and exit status.
fn watch_server(
    mut command: std::process::Command,
    pid_tx: std::sync::mpsc::Sender<io::Result<u32>>,
    exit_tx: oneshot::Sender<ServerExit>,
    book: usage::Page,
) {
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            book.reaped();
            let _ = pid_tx.send(Err(err));
            return;
        }
    };
    // The parent's ends belong to the server now.
    drop(command);
    let _ = pid_tx.send(Ok(child.id()));
    // Open until the server and everything that shares its stderr are gone.
    let stderr = child
        .stderr
        .take()
        .map(|mut pipe| {
            let mut text = String::new();
            let _ = io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
        .unwrap_or_default();
    let status = child.wait();
    book.reaped();
    let _ = exit_tx.send(ServerExit { stderr, status });
}

/// Why a server stopped: its stderr (bubblewrap's explanation, say), else its status.
pub(super) fn exit_reason(exit: &ServerExit) -> String {
    match (exit.stderr.trim(), &exit.status) {
        ("", Ok(status)) => format!("the sandbox server exited with {status}"),
        ("", Err(err)) => format!("the sandbox server was lost: {err}"),
        (text, _) => text.to_string(),
    }
}

/// What the server's thread reports once the server has exited, waited for without a
/// runtime's help (the caller may be on a runtime's thread, where `blocking_recv`
/// refuses to block): the thread sends as soon as the server's stderr closes.
fn wait_for_exit(exit_rx: &mut oneshot::Receiver<ServerExit>) -> Option<ServerExit> {
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    loop {
        match exit_rx.try_recv() {
            Ok(exit) => return Some(exit),
            Err(oneshot::error::TryRecvError::Closed) => return None,
            Err(oneshot::error::TryRecvError::Empty) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(oneshot::error::TryRecvError::Empty) => return None,
        }
    }
}
