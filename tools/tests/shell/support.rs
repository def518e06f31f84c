//! A workspace with a shell tool context, and waiting on processes by pid.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::{Value, json};
use tempfile::TempDir;
use tools::config::ShellConfig;
use tools::shell::ShellTool;
use tools::{Tool, ToolContext, ToolError, ToolOutput, ToolsConfig, WorkspaceJail};

/// Upper bound for conditions the tests wait on (a process disappearing, a file
/// appearing); generous, because a loaded machine is slow, and never reached when the
/// behaviour is right.
const WAIT_LIMIT: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(20);

pub struct Workspace {
    dir: TempDir,
    pub ctx: ToolContext,
}

impl Workspace {
    pub fn new() -> Self {
        Self::with_config(ShellConfig::default())
    }

    pub fn with_config(shell: ShellConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = ToolsConfig {
            shell,
            ..ToolsConfig::default()
        };
        let ctx = ToolContext::new(WorkspaceJail::new(dir.path()).unwrap(), Arc::new(config));
        Self { dir, ctx }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub async fn call(&self, args: Value) -> Result<ToolOutput, ToolError> {
        ShellTool.call(&self.ctx, args).await
    }

    pub async fn run(&self, command: &str) -> ToolOutput {
        self.call(json!({ "command_string": command }))
            .await
            .unwrap()
    }
}

/// Whether a process no longer runs. A killed process whose parent is gone may linger as
/// a zombie until the system's init reaps it (some container inits never do); a zombie
/// runs nothing, so it counts as gone.
pub fn is_gone(pid: Pid) -> bool {
    match kill(pid, None) {
        Err(Errno::ESRCH) => true,
        _ => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                // `pid (comm) state ...`; comm may contain spaces, so split after `)`.
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true),
    }
}

pub async fn wait_until_gone(pid: Pid) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    while !is_gone(pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {pid} is still running"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A pid written by the command with `echo $! > file` (complete once it ends in `\n`).
pub fn read_pid(path: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.strip_suffix('\n')?;
    Some(Pid::from_raw(line.trim().parse().ok()?))
}

pub async fn wait_for_pid_file(path: &Path) -> Pid {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(pid) = read_pid(path) {
            return pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}
