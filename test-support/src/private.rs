//! Services of one test's own, which it stops and starts: a Kafka broker (tansu, behind
//! a [`FaultProxy`]) and a Redis server, on free ports. The binaries are the ones
//! `scripts/services` installs; a missing one fails the test (it never skips).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::procs::{free_port, program, wait_for_port};
use crate::proxy::FaultProxy;

use crate::services::unreachable;

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

/// A MariaDB server of the test's own (`mariadb-install-db` into a temp folder, then
/// `mariadbd --datadir`), stopped and started on the same port with its data kept. It
/// runs without grant tables: any user name logs in, which is all a test needs.
pub struct PrivateMariaDb {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivateMariaDb {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let installed = Command::new(program("mariadb-install-db"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args([
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| unreachable("mariadb-install-db", err));
        assert!(
            installed.status.success(),
            "mariadb-install-db: {installed:?}"
        );
        let mut server = Self {
            child: None,
            dir,
            port: free_port(),
        };
        server.up().await;
        server
    }

    /// The admin URL (any user: no grant tables).
    pub fn url(&self) -> String {
        format!("mysql://agent:agent@127.0.0.1:{}/mysql", self.port)
    }

    pub async fn up(&mut self) {
        let path = self.dir.path();
        let child = Command::new(program("mariadbd"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", path.join("data").display()))
            .arg(format!("--socket={}", path.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", path.join("mysqld.pid").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-grant-tables",
            ])
            .args(["--skip-name-resolve", "--innodb-buffer-pool-size=16M"])
            .args(["--innodb-log-file-size=8M", "--skip-log-bin"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| unreachable("mariadbd", err));
        self.child = Some(child);
        wait_for_port(self.port, "mariadbd").await;
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown) and waits for its port to free.
    pub async fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
        crate::procs::wait_for_port_closed(self.port, "mariadbd").await;
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            kill(child);
        }
    }
}
