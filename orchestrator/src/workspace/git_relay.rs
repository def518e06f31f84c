//! The clone's only way to the network: a relay on loopback, one per clone.
//!
//! Left to itself, libgit2 resolves the host name again (a DNS answer that changed since
//! the URL was checked would steer it anywhere), follows a redirect to another host, and
//! waits on a server that accepted the connection and then stalls or trickles for as
//! long as the kernel lets it, holding a worker slot. So the clone never connects by
//! itself: for `https` libgit2 is given the relay as its HTTP proxy (it asks
//! `CONNECT host:port`, so TLS stays end to end and the certificate is still checked
//! against the host name); for `git://` the URL's authority is replaced by the relay's.
//! The relay
//! - connects only to the addresses the URL policy checked before the clone started,
//! - only for the URL's own host and port: a redirect elsewhere is refused,
//! - cuts every connection once nothing moved in either direction for the idle limit, or
//!   the clone's deadline passed, and records why, so the clone fails with that reason.
//!
//! Plain threads, not async: the clone runs on a blocking thread, and one relay carries
//! one clone's few sequential connections.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a blocked read or write wakes to look at the clocks and the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// Longest `CONNECT` request head accepted from libgit2.
const MAX_CONNECT_HEAD: usize = 8 * 1024;

/// How libgit2 reaches the relay.
#[derive(Debug, Clone)]
pub(crate) enum RelayMode {
    /// As its HTTP proxy: the first bytes are `CONNECT host:port`, which must name the
    /// URL's host and port.
    Connect { host: String, port: u16 },
    /// As if the relay were the server (`git://`).
    Forward,
}

/// Why the relay cut the clone off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RelayFailure {
    /// Nothing moved in either direction for this long.
    Idle(Duration),
    /// The clone's whole time limit passed.
    Deadline(Duration),
    /// libgit2 asked for another host or port (a redirect).
    OtherHost(String),
    /// None of the checked addresses accepted a connection.
    Unreachable(String),
}

impl fmt::Display for RelayFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayFailure::Idle(idle) => write!(
                f,
                "the git server sent nothing for {} s; it may be down or overloaded, retry later",
                idle.as_secs_f64()
            ),
            RelayFailure::Deadline(total) => write!(
                f,
                "the clone did not finish within its {} s limit (the server is too slow or \
                 the repository too large)",
                total.as_secs_f64()
            ),
            RelayFailure::OtherHost(target) => write!(
                f,
                "the server redirected the clone to `{target}`; redirects to another host are not followed"
            ),
            RelayFailure::Unreachable(detail) => write!(f, "cannot connect: {detail}"),
        }
    }
}

/// What one relay may do.
#[derive(Debug, Clone)]
pub(crate) struct RelaySettings {
    pub mode: RelayMode,
    /// The checked addresses, tried in order.
    pub targets: Vec<SocketAddr>,
    pub idle: Duration,
    /// The clone's whole time limit, and when it runs out.
    pub total: Duration,
    pub deadline: Instant,
}

/// A running relay; stopped (every connection cut) when dropped.
pub(crate) struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    settings: RelaySettings,
    stop: AtomicBool,
    failure: Mutex<Option<RelayFailure>>,
    /// Every socket opened, so the deadline or the drop can cut them all at once.
    sockets: Mutex<Vec<TcpStream>>,
}

/// One connection's sockets and when a byte last moved on it, shared by its two pumps.
struct Conn {
    started: Instant,
    /// Milliseconds after `started`.
    last_activity_ms: AtomicU64,
    sockets: Mutex<Vec<TcpStream>>,
}

impl Relay {
    /// Listens on an ephemeral loopback port.
    pub fn start(settings: RelaySettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            settings,
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            sockets: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("git-relay".into())
            .spawn(move || accept_loop(&listener, &accepting))?;
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Why the relay cut the clone off, if it did.
    pub fn failure(&self) -> Option<RelayFailure> {
        self.shared.failure()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, TICK);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.cut_all();
    }
}

impl Shared {
    fn failure(&self) -> Option<RelayFailure> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records `failure` unless an earlier one is recorded.
    fn record(&self, failure: RelayFailure) {
        let mut slot = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            tracing::info!(reason = %failure, "git relay cut the clone off");
            *slot = Some(failure);
        }
    }

    /// Records the failure and cuts every connection, now and to come.
    fn fail(&self, failure: RelayFailure) {
        self.record(failure);
        self.stop.store(true, Ordering::SeqCst);
        self.cut_all();
    }

    fn cut_all(&self) {
        let sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        for socket in sockets.iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Whether the relay as a whole must stop: stopped, or past the deadline (recorded).
    fn stopped(&self) -> bool {
        if self.stop.load(Ordering::SeqCst) {
            return true;
        }
        if Instant::now() >= self.settings.deadline {
            self.fail(RelayFailure::Deadline(self.settings.total));
            return true;
        }
        false
    }

    /// How long a connection attempt may take: the idle limit, within the deadline.
    fn connect_timeout(&self) -> Duration {
        let left = self
            .settings
            .deadline
            .saturating_duration_since(Instant::now());
        left.min(self.settings.idle).max(Duration::from_millis(1))
    }
}

impl Conn {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            sockets: Mutex::new(Vec::new()),
        }
    }

    /// Sets the socket's wake-up tick and tracks it for cutting.
    fn adopt(&self, socket: &TcpStream, shared: &Shared) -> bool {
        let (Ok(mine), Ok(relays)) = (socket.try_clone(), socket.try_clone()) else {
            return false;
        };
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mine);
        shared
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(relays);
        socket.set_read_timeout(Some(TICK)).is_ok() && socket.set_write_timeout(Some(TICK)).is_ok()
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(now, Ordering::Relaxed);
    }

    /// Whether this connection must stop: the relay stopped, or nothing moved on it for
    /// the idle limit (then it alone is cut, and the reason recorded: a connection left
    /// open while libgit2 works locally is harmless to cut, a stalled server is not).
    fn should_stop(&self, shared: &Shared) -> bool {
        if shared.stopped() {
            return true;
        }
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        if self.started.elapsed().saturating_sub(last) < shared.settings.idle {
            return false;
        }
        shared.record(RelayFailure::Idle(shared.settings.idle));
        let sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        for socket in sockets.iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        true
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else { continue };
        let serving = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("git-relay-conn".into())
            .spawn(move || serve(client, &serving));
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "git relay cannot start a connection thread");
        }
    }
}

/// One connection from libgit2: the proxy handshake if any, the connection to a checked
/// address, then bytes both ways until either side ends or the relay stops it.
fn serve(client: TcpStream, shared: &Arc<Shared>) {
    let conn = Arc::new(Conn::new());
    if !conn.adopt(&client, shared) {
        return;
    }
    let proxied = matches!(shared.settings.mode, RelayMode::Connect { .. });
    if let RelayMode::Connect { host, port } = &shared.settings.mode
        && !accept_connect(&client, host, *port, &conn, shared)
    {
        return;
    }
    let Some(server) = connect_target(&conn, shared) else {
        if proxied {
            let _ = write_all(&client, b"HTTP/1.1 502 Bad Gateway\r\n\r\n", &conn, shared);
        }
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    if proxied
        && !write_all(
            &client,
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            &conn,
            shared,
        )
    {
        return;
    }
    let (Ok(client_copy), Ok(server_copy)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (up_conn, up_shared) = (Arc::clone(&conn), Arc::clone(shared));
    let pump_up = std::thread::Builder::new()
        .name("git-relay-up".into())
        .spawn(move || pump(&client_copy, &server_copy, &up_conn, &up_shared));
    pump(&server, &client, &conn, shared);
    if let Ok(handle) = pump_up {
        let _ = handle.join();
    }
}

/// Reads libgit2's `CONNECT host:port HTTP/1.1` head; anything but the URL's own host
/// and port is refused (403) and recorded: it can only be a redirect elsewhere.
fn accept_connect(client: &TcpStream, host: &str, port: u16, conn: &Conn, shared: &Shared) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_CONNECT_HEAD || conn.should_stop(shared) {
            return false;
        }
        match (&*client).read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                conn.touch();
                head.extend_from_slice(&buf[..n]);
            }
            Err(err) if is_timeout(&err) => {}
            Err(_) => return false,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let first = text.lines().next().unwrap_or_default();
    let mut words = first.split_whitespace();
    let (Some("CONNECT"), Some(authority)) = (words.next(), words.next()) else {
        let _ = write_all(
            client,
            b"HTTP/1.1 405 Method Not Allowed\r\n\r\n",
            conn,
            shared,
        );
        return false;
    };
    if !same_authority(authority, host, port) {
        let failure = RelayFailure::OtherHost(crate::workspace::display_name(authority));
        shared.record(failure.clone());
        let _ = write_all(client, b"HTTP/1.1 403 Forbidden\r\n\r\n", conn, shared);
        shared.fail(failure);
        return false;
    }
    true
}

/// Whether `host:port` (IPv6 with or without brackets) names `host` and `port`.
fn same_authority(authority: &str, host: &str, port: u16) -> bool {
    let Some((asked_host, asked_port)) = authority.rsplit_once(':') else {
        return false;
    };
    let asked_host = asked_host.trim_start_matches('[').trim_end_matches(']');
    let wanted = host.trim_start_matches('[').trim_end_matches(']');
    asked_port.parse::<u16>() == Ok(port)
        && asked_host
            .trim_end_matches('.')
            .eq_ignore_ascii_case(wanted.trim_end_matches('.'))
}

/// The first checked address that accepts, or `None` (recorded as the failure).
fn connect_target(conn: &Conn, shared: &Shared) -> Option<TcpStream> {
    let mut errors = Vec::new();
    for target in &shared.settings.targets {
        if shared.stopped() {
            return None;
        }
        match TcpStream::connect_timeout(target, shared.connect_timeout()) {
            Ok(server) => {
                if !conn.adopt(&server, shared) {
                    return None;
                }
                conn.touch();
                return Some(server);
            }
            Err(err) => errors.push(format!("{target}: {err}")),
        }
    }
    shared.record(RelayFailure::Unreachable(errors.join("; ")));
    None
}

/// Copies `from` to `to` until `from` ends (then half-closes `to`) or the relay stops.
fn pump(from: &TcpStream, to: &TcpStream, conn: &Conn, shared: &Shared) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if conn.should_stop(shared) {
            return;
        }
        match (&*from).read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                conn.touch();
                if !write_all(to, &buf[..n], conn, shared) {
                    let _ = from.shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(err) if is_timeout(&err) => {}
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Writes all of `bytes`, waking every tick to honour the limits; false if the
/// connection was stopped or the socket failed first.
fn write_all(to: &TcpStream, mut bytes: &[u8], conn: &Conn, shared: &Shared) -> bool {
    while !bytes.is_empty() {
        if conn.should_stop(shared) {
            return false;
        }
        match (&*to).write(bytes) {
            Ok(0) => return false,
            Ok(n) => {
                conn.touch();
                bytes = &bytes[n..];
            }
            Err(err) if is_timeout(&err) => {}
            Err(_) => return false,
        }
    }
    true
}

fn is_timeout(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

#[cfg(test)]
#[path = "git_relay_tests.rs"]
mod tests;
