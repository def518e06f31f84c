//! Services of one test's own, which it stops and starts: a Kafka broker (tansu, behind
//! a [`FaultProxy`]) and a Redis server, on free ports. The binaries are the ones
//! `scripts/services` installs; a missing one fails the test (it never skips).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::proxy::{FaultProxy, free_port};
use crate::e2e_support::{WAIT, eventually};
use crate::services::unreachable;

/// A program on PATH, else in cargo's bin folder.
fn program(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    on_path
        .or_else(|| cargo_home.map(|home| home.join("bin").join(name)))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| unreachable(name, "not installed"))
}

async fn wait_for_port(port: u16, what: &str) {
    let up = eventually(WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(drop)
    })
    .await;
    assert!(up.is_some(), "{what} did not listen on port {port}");
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A tansu broker that advertises its proxy's address, so clients reach it only through
/// the proxy: the proxy down is the broker unreachable, its topics and offsets kept.
pub struct PrivateBroker {
    child: Child,
    pub proxy: FaultProxy,
}

impl PrivateBroker {
    pub async fn start() -> Self {
        let port = free_port();
        let proxy = FaultProxy::to(([127, 0, 0, 1], port).into());
        let child = Command::new(program("tansu"))
            .arg("broker")
            .args(["--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args([
                "--advertised-listener-url",
                &format!("tcp://{}", proxy.addr()),
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .args([
                "--prometheus-listener-url",
                &format!("tcp://127.0.0.1:{}", free_port()),
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| unreachable("tansu", err));
        let broker = Self { child, proxy };
        wait_for_port(port, "tansu").await;
        broker.proxy.up();
        broker
    }

    /// The address clients are given.
    pub fn brokers(&self) -> String {
        self.proxy.addr()
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A Redis server of the test's own, stopped and started on the same port.
pub struct PrivateRedis {
    child: Option<Child>,
    pub port: u16,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
        };
        redis.up().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn up(&mut self) {
        let child = Command::new(program("redis-server"))
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| unreachable("redis-server", err));
        self.child = Some(child);
        wait_for_port(self.port, "redis-server").await;
    }

    pub async fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
        // Bounded: the port is free once the process is gone.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            kill(child);
        }
    }
}
