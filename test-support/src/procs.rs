//! Processes and ports: the processes of a task (found as the runner finds them, by
//! `AGENT_TASK_ID` in their environment), free ports, and programs the tests start.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::services::unreachable;
use crate::{WAIT, eventually};

/// Live (not zombie) processes whose environment says they run `task_id`: the agent and
/// anything it started (`AGENT_TASK_ID` is inherited).
pub fn processes_of_task(task_id: &str) -> Vec<i32> {
    let wanted = format!("AGENT_TASK_ID={task_id}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let state = stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].trim_start().chars().next());
        if matches!(state, None | Some('Z' | 'X')) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == wanted.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Waits (bounded) until no process of `task_id` is left.
pub async fn assert_no_process_left(task_id: &str) {
    let gone = eventually(WAIT, || async {
        processes_of_task(task_id).is_empty().then_some(())
    });
    assert!(
        gone.await.is_some(),
        "processes of task {task_id} still alive: {:?}",
        processes_of_task(task_id)
    );
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits (bounded) until something accepts connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16, what: &str) {
    let up = eventually(WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(drop)
    })
    .await;
    assert!(up.is_some(), "{what} did not listen on port {port}");
}

/// Waits (bounded) until nothing accepts connections on `127.0.0.1:port` any more.
pub async fn wait_for_port_closed(port: u16, what: &str) {
    let closed = eventually(WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(closed.is_some(), "{what} still listens on port {port}");
}

/// A program on PATH, else in cargo's bin folder, else in `/usr/sbin` (`mariadbd`); a
/// missing one fails the test (it never skips).
pub fn program(name: &str) -> PathBuf {
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
        .or_else(|| Some(PathBuf::from("/usr/sbin").join(name)).filter(|path| path.is_file()))
        .unwrap_or_else(|| unreachable(name, "not installed"))
}

/// Polls `check` until it returns `Some`, or `None` after `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, interval: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(interval).await;
    }
}
