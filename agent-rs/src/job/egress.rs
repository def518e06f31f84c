//! The job's way out when its runner sandboxed it without a network: a relay from a
//! loopback port to the runner's egress proxy.
//!
//! The runner (the embedded process runner) starts the job in a network namespace of its
//! own, where nothing but a loopback exists, and binds a folder holding the Unix socket
//! of an HTTP proxy that lets through only the model endpoint and the run's own signed
//! URLs. HTTP clients speak to proxies over TCP, so the job listens on a loopback address
//! inside its namespace and copies each connection to that socket, byte for byte; the
//! proxy does all the checking. The model client reaches it through `HTTP_PROXY`, the
//! transfers through [`super::http::TransferPolicy::via`], and the agent's commands only
//! when the run gives them the network (then through the same checks).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where to listen and where to relay to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRelay {
    pub socket: PathBuf,
    pub listen: SocketAddr,
}

/// Starts the relay; returns the proxy URL for HTTP clients.
pub async fn start_relay(relay: &EgressRelay) -> std::io::Result<String> {
    let address = tools::egress::relay::start(relay.socket.clone(), relay.listen).await?;
    tracing::info!(%address, "egress relay started");
    Ok(format!("http://{address}"))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpStream, UnixListener};

    use super::*;

    #[tokio::test]
    async fn bytes_go_both_ways_between_the_port_and_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("proxy.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await.unwrap();
            stream
                .write_all(&buf.map(|b| b.to_ascii_uppercase()))
                .await
                .unwrap();
        });
        let url = start_relay(&EgressRelay {
            socket,
            listen: "127.0.0.1:0".parse().unwrap(),
        })
        .await
        .unwrap();
        let address = url.strip_prefix("http://").unwrap();
        let mut client = TcpStream::connect(address).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"PING");
    }
}
