//! The sandbox's end of the way out: a loopback TCP port whose connections are copied,
//! byte for byte, to the proxy's Unix socket.
//!
//! HTTP clients reach proxies over TCP, and a process in an empty network namespace can
//! reach no TCP port of the proxy's; a Unix socket bound into the sandbox crosses that
//! line. The relay does no checking: the proxy behind the socket does it all.
//!
//! Two users: an agent the embedded runner sandboxed runs the relay itself
//! ([`start`]); a shell command under bubblewrap runs behind one
//! ([`run_command_behind`]): the sandbox's first program listens, then starts the command
//! and exits with its status, so the port is open before the command's first request.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::{TcpListener, UnixStream};

/// Listens on `listen` and relays each connection to `socket`, until the runtime ends;
/// returns the address listened on.
pub async fn start(socket: PathBuf, listen: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                match UnixStream::connect(&socket).await {
                    Ok(mut upstream) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, socket = %socket.display(), "the egress proxy is unreachable");
                    }
                }
            });
        }
    });
    Ok(address)
}

/// Starts the relay, then `argv` (stdio inherited), and returns the exit code to exit
/// with: the command's, or 128 plus the signal that ended it, as a shell reports it.
pub async fn run_command_behind(
    socket: PathBuf,
    listen: SocketAddr,
    argv: &[OsString],
) -> std::io::Result<i32> {
    use std::os::unix::process::ExitStatusExt;
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("no command to run behind the relay"))?;
    start(socket, listen).await?;
    let status = tokio::process::Command::new(program)
        .args(args)
        .status()
        .await?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1))
}
