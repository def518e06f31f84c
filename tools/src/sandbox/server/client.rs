//! The agent's side of a sandbox server: starting it, asking it to start commands,
//! waiting for their status, and noticing when it is gone.
//!
//! A thread per server starts it, then waits for it to exit and reaps it: it is the
//! thread the server's "die with the parent" refers to, so it lives exactly as long as
//! the server. The server's answers are read by a task on the agent's own runtime, which
//! hands each to the command it is about ([`Routes`]): an answer wakes the runtime
//! once, where a reading thread cost a thread switch and a wake-up of the runtime for
//! each. At end of stream (the server exited, was killed, or crashed), or if the runtime
//! drops the task, every command still waiting learns that the server is gone and the
//! server is marked dead (the next command starts a new one).

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::launch::{START_TIMEOUT, ServerExit, SpawnedServer, exit_reason, kill_pid, on_runtime};
use super::protocol::{self, Request, Response};
use super::usage;

/// How long a kill request may take before the command is given up on.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// A running sandbox server.
#[derive(Debug)]
pub(crate) struct CommandServer {
    requests: Mutex<UnixStream>,
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU64,
    /// The server's process id (the agent's view), to kill it if it never gets ready.
    pid: u32,
}

/// Where each answer goes, and whether the server is still there.
#[derive(Debug, Default)]
struct Routes {
    gone: bool,
    /// The agent closed its side: the server's end is expected (however it comes).
    closing: bool,
    commands: HashMap<u64, mpsc::UnboundedSender<Response>>,
}

/// Why a command could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    /// The server is gone (killed, crashed); a new one can try.
    #[error("the sandbox server stopped before it started the command")]
    ServerGone,
    /// The server tried, and starting failed.
    #[error("{0}")]
    Failed(String),
}

/// A server that said it is ready, waiting to be taken up by a runtime.
#[derive(Debug)]
pub(crate) struct ReadyServer(SpawnedServer);

impl ReadyServer {
    pub(super) fn new(spawned: SpawnedServer) -> Self {
        Self(spawned)
    }

    /// Its answers read from now on by a task of the current runtime.
    pub(crate) fn serve(self) -> io::Result<Arc<CommandServer>> {
        CommandServer::serving(self.0, None)
    }
}

impl CommandServer {
    /// Starts `argv` as the server and waits until it says it is ready.
    pub(crate) async fn start(argv: Vec<OsString>) -> io::Result<Arc<Self>> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let server = Self::serving(SpawnedServer::spawn(argv)?, Some(ready_tx))?;
        match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(server),
            Ok(Ok(Err(reason))) => Err(io::Error::other(reason)),
            Ok(Err(_)) => Err(io::Error::other("the sandbox server's answers were lost")),
            Err(_) => {
                server.kill();
                Err(io::Error::other(format!(
                    "the sandbox server was not ready within {}s",
                    START_TIMEOUT.as_secs()
                )))
            }
        }
    }

    /// The agent's side of a spawned server: its answers read by a task of the current
    /// runtime, the first one (`Ready`, or why it stopped before) sent to `ready_tx`
    /// when given (a server taken up after it said so has none).
    fn serving(
        spawned: SpawnedServer,
        ready_tx: Option<oneshot::Sender<Result<(), String>>>,
    ) -> io::Result<Arc<Self>> {
        let SpawnedServer {
            requests,
            answers,
            book,
            exit_rx,
            pid,
        } = spawned;
        let answers = match on_runtime(answers) {
            Ok(answers) => answers,
            Err(err) => {
                kill_pid(pid);
                return Err(err);
            }
        };
        let routes = Arc::new(Mutex::new(Routes::default()));
        tokio::spawn(route_answers(
            answers,
            pid,
            Arc::clone(&routes),
            book,
            ready_tx,
            exit_rx,
        ));
        Ok(Arc::new(Self {
            requests: Mutex::new(requests),
            routes,
            next_id: AtomicU64::new(1),
            pid,
        }))
    }

    /// Whether the server is still there, as far as the agent has heard.
    pub(crate) fn is_alive(&self) -> bool {
        self.routes.lock().is_ok_and(|routes| !routes.gone)
    }

    /// Kills the server (tests, and a server that stopped answering).
    pub(crate) fn kill(&self) {
        kill_pid(self.pid);
    }

    /// Starts a command: `fds` are its stdout, stderr and, with `join_cgroup`, its
    /// cgroup's `cgroup.procs`.
    pub(crate) async fn spawn(
        self: &Arc<Self>,
        program: OsString,
        args: Vec<OsString>,
        cwd: PathBuf,
        env: Vec<(OsString, OsString)>,
        fds: &[RawFd],
        join_cgroup: bool,
    ) -> Result<ServedCommand, SpawnError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut routes = self.routes.lock().map_err(|_| SpawnError::ServerGone)?;
            if routes.gone {
                return Err(SpawnError::ServerGone);
            }
            routes.commands.insert(id, tx);
        }
        let mut command = ServedCommand {
            id,
            pid: 0,
            server: Arc::clone(self),
            answers: VecDeque::new(),
            rx: None,
        };
        let request = Request::Spawn {
            id,
            program,
            args,
            cwd,
            env,
            join_cgroup,
        };
        if self.send(&request, fds).is_err() {
            return Err(SpawnError::ServerGone);
        }
        loop {
            match rx.recv().await {
                Some(Response::Started { pid, .. }) => {
                    command.pid = pid;
                    command.rx = Some(rx);
                    return Ok(command);
                }
                Some(Response::Failed { message, .. }) => return Err(SpawnError::Failed(message)),
                Some(_) => {}
                None => return Err(SpawnError::ServerGone),
            }
        }
    }

    fn send(&self, request: &Request, fds: &[RawFd]) -> io::Result<()> {
        let socket = self
            .requests
            .lock()
            .map_err(|_| io::Error::other("the requests stream lock is poisoned"))?;
        protocol::send_request(&socket, request, fds)
    }
}

impl Drop for CommandServer {
    fn drop(&mut self) {
        // End of stream for the server: it kills what still runs, reports and exits.
        if let Ok(mut routes) = self.routes.lock() {
            routes.closing = true;
        }
        if let Ok(socket) = self.requests.get_mut() {
            let _ = socket.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// A command the server started.
#[derive(Debug)]
pub(crate) struct ServedCommand {
    id: u64,
    /// Its pid as the server sees it (in the sandbox's PID namespace, if it has one).
    pid: i32,
    server: Arc<CommandServer>,
    /// Answers read while waiting for another one.
    answers: VecDeque<Response>,
    rx: Option<mpsc::UnboundedReceiver<Response>>,
}

impl ServedCommand {
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for the command's exit status; an error when the server went away first
    /// (its commands with it, under bubblewrap). Cancel-safe.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.take(|answer| match answer {
            Response::Exited { status, .. } => Some(*status),
            _ => None,
        }) {
            return Ok(ExitStatus::from_raw(status));
        }
        loop {
            match self.next().await {
                Some(Response::Exited { status, .. }) => return Ok(ExitStatus::from_raw(status)),
                Some(other) => self.answers.push_back(other),
                None => return Err(gone()),
            }
        }
    }

    /// Asks the server to kill the command's group and the processes carrying `mark`,
    /// and waits until it has.
    pub(crate) async fn kill(&mut self, mark: &str) -> io::Result<()> {
        self.request_kill(mark)?;
        let killed = async {
            loop {
                if self
                    .take(|answer| matches!(answer, Response::Killed { .. }).then_some(()))
                    .is_some()
                {
                    return Ok(());
                }
                match self.next().await {
                    Some(answer) => self.answers.push_back(answer),
                    None => return Err(gone()),
                }
            }
        };
        tokio::time::timeout(KILL_TIMEOUT, killed)
            .await
            .map_err(|_| io::Error::other("the sandbox server did not kill the command in time"))?
    }

    /// Asks for the kill without waiting (a dropped call).
    pub(crate) fn request_kill(&self, mark: &str) -> io::Result<()> {
        self.server.send(
            &Request::Kill {
                id: self.id,
                pgid: self.pid,
                mark: mark.to_string(),
            },
            &[],
        )
    }

    async fn next(&mut self) -> Option<Response> {
        self.rx.as_mut()?.recv().await
    }

    fn take<T>(&mut self, wanted: impl Fn(&Response) -> Option<T>) -> Option<T> {
        let index = self
            .answers
            .iter()
            .position(|answer| wanted(answer).is_some())?;
        self.answers
            .remove(index)
            .and_then(|answer| wanted(&answer))
    }
}

impl Drop for ServedCommand {
    fn drop(&mut self) {
        if let Ok(mut routes) = self.server.routes.lock() {
            routes.commands.remove(&self.id);
        }
    }
}

fn gone() -> io::Error {
    io::Error::other(
        "the sandbox server stopped while the command ran (it was killed or crashed); the \
         command's processes were killed with it. Run the command again: a new sandbox \
         starts",
    )
}

/// Marks the server gone for every command (dropping their senders tells those
/// waiting), however the reading task ends: at the end of the stream, or dropped with
/// its runtime.
struct GoneOnDrop(Arc<Mutex<Routes>>);

impl GoneOnDrop {
    /// Marks it now; returns whether the agent had closed its side (an expected end).
    fn mark(&self) -> bool {
        let Ok(mut routes) = self.0.lock() else {
            return false;
        };
        routes.gone = true;
        routes.commands.clear();
        routes.closing
    }
}

impl Drop for GoneOnDrop {
    fn drop(&mut self) {
        self.mark();
    }
}

/// The task reading the server's answers: `ready_tx` gets the first one (or why the
/// server stopped before it), each command the answers about it, until end of stream.
async fn route_answers(
    answers: tokio::net::UnixStream,
    pid: u32,
    routes: Arc<Mutex<Routes>>,
    book: usage::Page,
    mut ready_tx: Option<oneshot::Sender<Result<(), String>>>,
    exit_rx: oneshot::Receiver<ServerExit>,
) {
    let gone = GoneOnDrop(Arc::clone(&routes));
    // Buffered: the two answers of a short command often come in one read.
    let mut answers = tokio::io::BufReader::new(answers);
    loop {
        match protocol::read_response(&mut answers).await {
            Ok(Some(Response::Ready)) => {
                if let Some(ready) = ready_tx.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            Ok(Some(Response::Finished { usage })) => book.update(usage),
            Ok(Some(answer)) => route(&routes, answer, book),
            Ok(None) => break,
            Err(err) => {
                tracing::warn!(error = %err, "the sandbox server's answers could not be read");
                kill_pid(pid);
                break;
            }
        }
    }
    let closing = gone.mark();
    drop(answers);
    let exit = exit_rx.await.ok();
    let reason = exit.as_ref().map_or_else(
        || "the sandbox server's thread ended".to_string(),
        exit_reason,
    );
    let succeeded = exit.is_some_and(|exit| exit.status.as_ref().is_ok_and(ExitStatus::success));
    match ready_tx {
        Some(ready) => {
            let _ = ready.send(Err(reason));
        }
        None if closing || succeeded => tracing::debug!("the sandbox server stopped"),
        None => tracing::warn!(%reason, "the sandbox server stopped"),
    }
}

/// Hands an answer about a command to that command, if it still waits.
fn route(routes: &Mutex<Routes>, answer: Response, book: usage::Page) {
    let id = match &answer {
        Response::Started { id, .. } | Response::Failed { id, .. } | Response::Killed { id } => *id,
        Response::Exited { id, usage, .. } => {
            book.update(*usage);
            *id
        }
        Response::Ready | Response::Finished { .. } => return,
    };
    let route = routes
        .lock()
        .ok()
        .and_then(|routes| routes.commands.get(&id).cloned());
    if let Some(route) = route {
        let _ = route.send(answer);
    }
}
