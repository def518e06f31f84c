//! A TCP proxy that a test takes down and brings back: the network between the service
//! and one of its backends failing, with the backend's data intact (a Kafka broker
//! advertises the proxy's address, so every client connection goes through it).

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::procs::free_port;

/// Forwards `127.0.0.1:{port}` to `target` while up. Down, it refuses connections and
/// has cut every connection it carried.
pub struct FaultProxy {
    pub port: u16,
    target: SocketAddr,
    running: Mutex<Option<CancellationToken>>,
}

impl FaultProxy {
    /// A proxy on a free port, down until [`FaultProxy::up`].
    pub fn to(target: SocketAddr) -> Self {
        let port = free_port();
        Self {
            port,
            target,
            running: Mutex::new(None),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts forwarding (again).
    pub fn up(&self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .unwrap();
        let listener = socket.listen(64).unwrap();
        let stop = CancellationToken::new();
        let target = self.target;
        let accepting = stop.clone();
        tokio::spawn(async move {
            loop {
                let (mut client, _) = tokio::select! {
                    _ = accepting.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                };
                let connection = accepting.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = connection.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        if let Some(old) = self.running.lock().unwrap().replace(stop) {
            old.cancel();
        }
    }

    /// Stops accepting and cuts every open connection.
    pub fn down(&self) {
        if let Some(stop) = self.running.lock().unwrap().take() {
            stop.cancel();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.down();
    }
}
