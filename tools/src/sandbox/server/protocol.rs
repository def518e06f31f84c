//! The messages between the agent and its sandbox server, and how they travel.
//!
//! Two Unix stream sockets, one per direction, each carrying frames: a little-endian
//! `u32` length, then the body (a kind byte and its fields, integers little-endian, byte
//! strings length-prefixed). A binary format rather than JSON: environments and paths
//! are bytes, not always UTF-8. The file descriptors a request hands over (a command's
//! stdout and stderr pipes, its cgroup) ride on the frame's first bytes as
//! `SCM_RIGHTS`; the receiver queues what arrives and the request says how many are
//! its own.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest frame accepted: a command line is at most 128 KiB (the kernel's limit for
/// one argument) and an environment a few hundred KiB.
const MAX_FRAME: usize = 8 << 20;
/// Bytes one read of requests may bring.
const READ_BYTES: usize = 64 * 1024;
/// File descriptors one read may bring (a request carries at most three).
const MAX_FDS_PER_READ: usize = 16;

/// What the agent asks of the server.
#[derive(Debug)]
pub(crate) enum Request {
    /// Start `program argv...` in `cwd` with exactly `env`, as a new process group, its
    /// stdout and stderr the first two descriptors handed over; with `join_cgroup`, the
    /// third is a cgroup's `cgroup.procs` the command joins before it runs.
    Spawn {
        id: u64,
        program: OsString,
        args: Vec<OsString>,
        cwd: PathBuf,
        env: Vec<(OsString, OsString)>,
        join_cgroup: bool,
    },
    /// Kill the process group `pgid` (the server's view of it) and the processes
    /// carrying `mark` in their environment; answered by [`Response::Killed`].
    Kill { id: u64, pgid: i32, mark: String },
}

/// What the server tells the agent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Response {
    /// Confined and serving.
    Ready,
    /// The command of `id` runs as `pid` (the server's view of it).
    Started { id: u64, pid: i32 },
    /// The command of `id` could not be started.
    Failed { id: u64, message: String },
    /// The command of `id` ended with the wait status `status`; `usage` is the
    /// server's so far.
    Exited {
        id: u64,
        status: i32,
        usage: ServerUsage,
    },
    /// The kill of `id` is done.
    Killed { id: u64 },
    /// The server stops (the agent closed its requests); its last figures.
    Finished { usage: ServerUsage },
}

/// CPU time of a server and of the commands it waited for, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ServerUsage {
    pub own_us: u64,
    pub children_us: u64,
}

impl ServerUsage {
    /// This process's figures, from `getrusage`.
    pub(crate) fn now() -> Self {
        use nix::sys::resource::{UsageWho, getrusage};
        let micros = |who| {
            getrusage(who).map_or(0, |usage| {
                let time = |t: nix::sys::time::TimeVal| {
                    u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
                        + u64::try_from(t.tv_usec()).unwrap_or(0)
                };
                time(usage.user_time()) + time(usage.system_time())
            })
        };
        Self {
            own_us: micros(UsageWho::RUSAGE_SELF),
            children_us: micros(UsageWho::RUSAGE_CHILDREN),
        }
    }
}

impl Request {
    fn encode(&self) -> Vec<u8> {
        let mut body = Body::default();
        match self {
            Self::Spawn {
                id,
                program,
                args,
                cwd,
                env,
                join_cgroup,
            } => {
                body.u8(1).u64(*id).bytes(program.as_bytes());
                body.u32(u32::try_from(args.len()).unwrap_or(u32::MAX));
                for arg in args {
                    body.bytes(arg.as_bytes());
                }
                body.bytes(cwd.as_os_str().as_bytes());
                body.u32(u32::try_from(env.len()).unwrap_or(u32::MAX));
                for (name, value) in env {
                    body.bytes(name.as_bytes()).bytes(value.as_bytes());
                }
                body.u8(u8::from(*join_cgroup));
            }
            Self::Kill { id, pgid, mark } => {
                body.u8(2).u64(*id).i32(*pgid).bytes(mark.as_bytes());
            }
        }
        body.0
    }

    fn decode(body: &[u8]) -> io::Result<Self> {
        let mut fields = Fields(body);
        match fields.u8()? {
            1 => {
                let id = fields.u64()?;
                let program = fields.os()?;
                let args = (0..fields.u32()?)
                    .map(|_| fields.os())
                    .collect::<io::Result<_>>()?;
                let cwd = PathBuf::from(fields.os()?);
                let env = (0..fields.u32()?)
                    .map(|_| Ok((fields.os()?, fields.os()?)))
                    .collect::<io::Result<_>>()?;
                let join_cgroup = fields.u8()? != 0;
                Ok(Self::Spawn {
                    id,
                    program,
                    args,
                    cwd,
                    env,
                    join_cgroup,
                })
            }
            2 => Ok(Self::Kill {
                id: fields.u64()?,
                pgid: fields.i32()?,
                mark: fields.text()?,
            }),
            other => Err(malformed(&format!("unknown request kind {other}"))),
        }
    }

    /// The descriptors that come with this request.
    pub(crate) fn fd_count(&self) -> usize {
        match self {
            Self::Spawn { join_cgroup, .. } => 2 + usize::from(*join_cgroup),
            Self::Kill { .. } => 0,
        }
    }
}

impl Response {
    fn encode(&self) -> Vec<u8> {
        let mut body = Body::default();
        match self {
            Self::Ready => {
                body.u8(1);
            }
            Self::Started { id, pid } => {
                body.u8(2).u64(*id).i32(*pid);
            }
            Self::Failed { id, message } => {
                body.u8(3).u64(*id).bytes(message.as_bytes());
            }
            Self::Exited { id, status, usage } => {
                body.u8(4).u64(*id).i32(*status);
                body.u64(usage.own_us).u64(usage.children_us);
            }
            Self::Killed { id } => {
                body.u8(5).u64(*id);
            }
            Self::Finished { usage } => {
                body.u8(6).u64(usage.own_us).u64(usage.children_us);
            }
        }
        body.0
    }

    fn decode(body: &[u8]) -> io::Result<Self> {
        let mut fields = Fields(body);
        let usage = |fields: &mut Fields<'_>| -> io::Result<ServerUsage> {
            Ok(ServerUsage {
                own_us: fields.u64()?,
                children_us: fields.u64()?,
            })
        };
        Ok(match fields.u8()? {
            1 => Self::Ready,
            2 => Self::Started {
                id: fields.u64()?,
                pid: fields.i32()?,
            },
            3 => Self::Failed {
                id: fields.u64()?,
                message: fields.text()?,
            },
            4 => Self::Exited {
                id: fields.u64()?,
                status: fields.i32()?,
                usage: usage(&mut fields)?,
            },
            5 => Self::Killed { id: fields.u64()? },
            6 => Self::Finished {
                usage: usage(&mut fields)?,
            },
            other => return Err(malformed(&format!("unknown response kind {other}"))),
        })
    }
}

/// Sends `request` with `fds` on `socket` (blocking).
pub(crate) fn send_request(
    socket: &UnixStream,
    request: &Request,
    fds: &[RawFd],
) -> io::Result<()> {
    let frame = framed(request.encode());
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    let sent = loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(&frame)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(sent) => break sent,
            Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Err(err.into()),
        }
    };
    // The descriptors went with the first bytes; the rest is plain data.
    let mut rest = frame.get(sent..).unwrap_or_default();
    let mut socket = socket;
    while !rest.is_empty() {
        let written = socket.write(rest)?;
        rest = rest.get(written..).unwrap_or_default();
    }
    Ok(())
}

/// Sends `response` on `socket` (blocking).
pub(crate) fn send_response(mut socket: &UnixStream, response: &Response) -> io::Result<()> {
    socket.write_all(&framed(response.encode()))
}

/// Reads the next response; `None` at end of stream (the server is gone). Cancel-safe
/// only between frames: the agent reads them in one task that runs to the end.
pub(crate) async fn read_response(
    socket: &mut (impl AsyncRead + Unpin),
) -> io::Result<Option<Response>> {
    let mut length = [0u8; 4];
    match socket.read_exact(&mut length).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let length = frame_length(length)?;
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await?;
    Response::decode(&body).map(Some)
}

/// [`read_response`] on a blocking socket: the first answer of a server started before
/// the agent's runtime runs.
pub(crate) fn read_response_blocking(socket: &mut impl io::Read) -> io::Result<Option<Response>> {
    let mut length = [0u8; 4];
    match socket.read_exact(&mut length) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let length = frame_length(length)?;
    let mut body = vec![0; length];
    socket.read_exact(&mut body)?;
    Response::decode(&body).map(Some)
}

/// The server's side of the requests socket: frames and the descriptors that came with
/// them.
pub(crate) struct RequestReader {
    socket: UnixStream,
    buffer: Vec<u8>,
    /// Room for one read, kept between reads.
    chunk: Box<[u8]>,
    fds: VecDeque<OwnedFd>,
}

impl RequestReader {
    pub(crate) fn new(socket: UnixStream) -> Self {
        Self {
            socket,
            buffer: Vec::new(),
            chunk: vec![0; READ_BYTES].into_boxed_slice(),
            fds: VecDeque::new(),
        }
    }

    /// The next request and its descriptors; `None` at end of stream (the agent closed
    /// its side, or is gone).
    #[cfg(test)]
    pub(crate) fn next(&mut self) -> io::Result<Option<(Request, Vec<OwnedFd>)>> {
        loop {
            if let Some(request) = self.take()? {
                return Ok(Some(request));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    /// The socket, to wait until it is readable.
    pub(crate) fn socket(&self) -> &UnixStream {
        &self.socket
    }

    /// The next request already read, with its descriptors.
    pub(crate) fn take(&mut self) -> io::Result<Option<(Request, Vec<OwnedFd>)>> {
        let Some(body) = self.take_frame()? else {
            return Ok(None);
        };
        let request = Request::decode(&body)?;
        let wanted = request.fd_count();
        if self.fds.len() < wanted {
            return Err(malformed("a request came without its descriptors"));
        }
        let fds = self.fds.drain(..wanted).collect();
        Ok(Some((request, fds)))
    }

    fn take_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Some(header) = self.buffer.first_chunk::<4>() else {
            return Ok(None);
        };
        let length = frame_length(*header)?;
        if self.buffer.len() < 4 + length {
            return Ok(None);
        }
        let body = self.buffer.get(4..4 + length).unwrap_or_default().to_vec();
        self.buffer.drain(..4 + length);
        Ok(Some(body))
    }

    /// One `recvmsg`: bytes to the buffer, descriptors to the queue; 0 at end of stream.
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS_PER_READ]);
        let (read, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut self.chunk)];
            match recvmsg::<()>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(message) => {
                    let mut fds = Vec::new();
                    for cmsg in message.cmsgs()? {
                        if let ControlMessageOwned::ScmRights(received) = cmsg {
                            fds.extend(received);
                        }
                    }
                    break (message.bytes, fds);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(err) => return Err(err.into()),
            }
        };
        for fd in fds {
            // SAFETY: the kernel just installed this descriptor in this process for us;
            // nothing else owns it.
            #[allow(unsafe_code)]
            self.fds.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        self.buffer
            .extend_from_slice(self.chunk.get(..read).unwrap_or_default());
        Ok(read)
    }
}

fn framed(body: Vec<u8>) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    frame.extend(body);
    frame
}

fn frame_length(header: [u8; 4]) -> io::Result<usize> {
    let length = usize::try_from(u32::from_le_bytes(header)).unwrap_or(usize::MAX);
    if length > MAX_FRAME {
        return Err(malformed("a frame longer than any message"));
    }
    Ok(length)
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("sandbox server protocol: {what}"),
    )
}

/// A message body being written.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }
    fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn i32(&mut self, value: i32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(value);
        self
    }
}

/// A message body being read.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| malformed("a message cut short"))?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn i32(&mut self) -> io::Result<i32> {
        Ok(i32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn os(&mut self) -> io::Result<OsString> {
        let length = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if self.0.len() < length {
            return Err(malformed("a message cut short"));
        }
        let (value, rest) = self.0.split_at(length);
        self.0 = rest;
        Ok(OsString::from_vec(value.to_vec()))
    }
    fn text(&mut self) -> io::Result<String> {
        Ok(self.os()?.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
