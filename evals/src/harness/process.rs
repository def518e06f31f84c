//! Running the programs of an attempt (setup, the agent, the check) so that none of them
//! can outlive its deadline or leave children behind.
//!
//! Each program starts as the leader of its own process group. When it exits, or when its
//! deadline passes, the whole group gets SIGKILL: a hung agent and the `sleep 600` its
//! shell tool left running die together, and the run never waits on them. The group is
//! killed before the leader is reaped (we wait with `WNOWAIT` first), so its id cannot
//! have been reused by another attempt's process in between.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use tokio::process::Command;

/// How a bounded program ended.
#[derive(Debug, Clone, Copy)]
pub struct Bounded {
    pub status: ExitStatus,
    /// The deadline passed and the group was killed.
    pub timed_out: bool,
    pub duration: Duration,
}

impl Bounded {
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// `exit N`, `killed by signal N`: for failure reasons.
    pub fn describe_exit(&self) -> String {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "unknown exit status".to_owned(),
        }
    }
}

/// Runs `command` in its own process group, killing the group at `limit`, and once the
/// leader exits (stray background children). Stdin is closed.
pub async fn run_bounded(command: &mut Command, limit: Duration) -> std::io::Result<Bounded> {
    command
        .process_group(0)
        .kill_on_drop(true)
        .stdin(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn()?;
    let Some(raw_pid) = child.id() else {
        // Already reaped: only possible if it exited and was waited for, which we did not do.
        let status = child.wait().await?;
        return Ok(Bounded {
            status,
            timed_out: false,
            duration: started.elapsed(),
        });
    };
    let pid = Pid::from_raw(i32::try_from(raw_pid).map_err(std::io::Error::other)?);
    let exited = tokio::task::spawn_blocking(move || wait_without_reaping(pid));
    let timed_out = tokio::time::timeout(limit, exited).await.is_err();
    kill_group(pid);
    let status = child.wait().await?;
    Ok(Bounded {
        status,
        timed_out,
        duration: started.elapsed(),
    })
}

/// Blocks until `pid` exits, leaving it a zombie so its process-group id stays reserved.
fn wait_without_reaping(pid: Pid) {
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(Errno::EINTR) => continue,
            _ => return,
        }
    }
}

fn kill_group(pid: Pid) {
    match killpg(pid, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(err) => tracing::warn!(%pid, %err, "cannot kill process group"),
    }
}

/// `bash -c SCRIPT` in `dir`, output to `log`, without the model API key in its
/// environment (setup and check scripts run the task's own code).
pub fn shell_command(script: &str, dir: &Path, log: &Path) -> std::io::Result<Command> {
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_remove("OPENAI_API_KEY");
    redirect_output(&mut command, log, log)?;
    Ok(command)
}

/// Sends stdout and stderr to files (the same file when both paths are equal).
pub fn redirect_output(command: &mut Command, stdout: &Path, stderr: &Path) -> std::io::Result<()> {
    let out = std::fs::File::create(stdout)?;
    let err = if stdout == stderr {
        out.try_clone()?
    } else {
        std::fs::File::create(stderr)?
    };
    command.stdout(Stdio::from(out)).stderr(Stdio::from(err));
    Ok(())
}

/// The `agent-rs` program: `explicit`, else next to the running `evals`, else on `PATH`.
pub fn find_agent_binary(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!(
                "--agent-bin {}: no such file; give the path of a built agent-rs binary",
                path.display()
            ))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("agent-rs")))
        .filter(|path| path.is_file());
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(OsStr::new("agent-rs")))
                .find(|path| path.is_file())
        })
    };
    beside.or_else(on_path).ok_or_else(|| {
        "cannot find the agent-rs program: it is neither next to the evals binary nor on PATH; \
         build it (cargo build -p agent-rs) or pass --agent-bin PATH"
            .to_owned()
    })
}
