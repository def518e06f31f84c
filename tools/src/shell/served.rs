//! A command started by the run's sandbox server, inside the run's one sandbox (see
//! `crate::sandbox`'s `server` module for the design).
//!
//! The agent makes the output pipes and keeps their read ends, so capture, caps and
//! draining are those of [`super::process`]; the server gets the write ends with the
//! request. The cleanup at the end kills only this command's processes, as other
//! commands of the run may be running in the same sandbox: the members of its `pids`
//! cgroup (every process it started, wherever it moved); without a cgroup, its group and
//! the processes carrying its mark, by the server in the sandbox's PID namespace, or by
//! the agent where there is none (Landlock: the PIDs are the agent's own).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitStatus;
use std::time::Duration;

use tokio::net::unix::pipe;
use tokio::time::Instant;

use super::direct::{ProcessGroup, on_child_path};
use super::escaped;
use super::process::{Running, ShellInvocation, ShellOutcome, supervise};
use crate::error::ToolError;
use crate::sandbox::{GitGuard, PidsCgroup, ServedCommand, ServerLease, SpawnError};

/// Rounds of killing a cgroup's members until none is left (a member may fork while
/// the previous round signals).
const KILL_ROUNDS: usize = 20;
const KILL_PAUSE: Duration = Duration::from_millis(1);

/// Runs the command through the run's server; see the module docs.
pub(super) async fn run(
    invocation: &ShellInvocation,
    lease: std::io::Result<ServerLease>,
    started: Instant,
) -> Result<ShellOutcome, ToolError> {
    let deadline = started + invocation.timeout;
    let mark = escaped::new_call_mark();
    // Dropped last: its processes are gone by then, and it is handed back.
    let cgroup = invocation.sandbox.pids_cgroup();
    // Under Landlock `.git`'s hooks and config are writable: recorded, then restored.
    let pid_namespace = invocation.sandbox.has_own_pid_namespace();
    let git = (!pid_namespace)
        .then(|| GitGuard::record(&invocation.workspace))
        .flatten();
    let lease = lease.map_err(start_error)?;
    let (command, stdout, stderr) = match start(invocation, &lease, &mark, cgroup.as_ref()).await {
        Err(SpawnError::ServerGone) => {
            // Killed or crashed since the last command: once more, on a new server.
            let lease = invocation
                .sandbox
                .command_server(&invocation.workspace)
                .await
                .ok_or_else(|| start_error(std::io::Error::other("no sandbox server")))?
                .map_err(start_error)?;
            start(invocation, &lease, &mark, cgroup.as_ref()).await
        }
        other => other,
    }
    .map_err(|err| ToolError::rejected(format!("cannot start the command: {err}")))?;
    let local_group =
        (!pid_namespace).then(|| ProcessGroup::new(command.pid(), mark.clone(), true));
    let mut running = Served {
        command,
        mark,
        cgroup: cgroup.as_ref(),
        local_group,
        killed: false,
    };
    let supervised = supervise(
        &mut running,
        stdout,
        stderr,
        invocation.output_cap_bytes,
        deadline,
    )
    .await;
    drop(running);
    let process_cap_hit = cgroup.as_ref().is_some_and(PidsCgroup::limit_was_hit);
    // Every process of the command is dead by now (cgroup, group, marks).
    drop(cgroup);
    let git_restored = git.as_ref().is_some_and(GitGuard::restore);
    Ok(ShellOutcome::of(
        supervised?,
        process_cap_hit,
        git_restored,
        started,
    ))
}

fn start_error(err: std::io::Error) -> ToolError {
    ToolError::rejected(format!(
        "{err}; the command did not run. Run it again, or report this if it persists"
    ))
}

/// Asks the server to start the command, with fresh pipes; returns it and the pipes'
/// read ends.
async fn start(
    invocation: &ShellInvocation,
    lease: &ServerLease,
    mark: &str,
    cgroup: Option<&PidsCgroup>,
) -> Result<(ServedCommand, pipe::Receiver, pipe::Receiver), SpawnError> {
    let failed = |err: std::io::Error| SpawnError::Failed(err.to_string());
    let (stdout_tx, stdout) = output_pipe().map_err(failed)?;
    let (stderr_tx, stderr) = output_pipe().map_err(failed)?;
    // The cgroup keeps it open for its commands: the server gets a copy with the request.
    let procs = match cgroup.map(PidsCgroup::procs_file).transpose() {
        Ok(file) => file,
        Err(err) => {
            tracing::warn!(error = %err, "cannot open a pids cgroup; the command runs uncapped");
            None
        }
    };
    let mut fds = vec![stdout_tx.as_raw_fd(), stderr_tx.as_raw_fd()];
    fds.extend(procs.map(AsRawFd::as_raw_fd));
    let mut env = invocation.env.clone();
    env.extend(invocation.sandbox.command_env());
    if let Some(tmp) = &lease.tmp {
        env.push(("TMPDIR".into(), tmp.path().as_os_str().to_owned()));
    }
    env.push((escaped::CALL_MARK_VAR.into(), mark.into()));
    let program = on_child_path(&invocation.program, &invocation.env);
    let args: Vec<OsString> = vec!["-c".into(), invocation.script.clone().into()];
    let command = lease
        .server
        .spawn(
            program,
            args,
            invocation.working_dir.clone(),
            env,
            &fds,
            procs.is_some(),
        )
        .await;
    // The server has its own copies now (or none, if it is gone).
    drop((stdout_tx, stderr_tx));
    let command = command.map_err(|err| match err {
        SpawnError::Failed(message) if message.contains("not found") => {
            SpawnError::Failed(format!(
                "`{}` was not found on PATH; run_shell_command needs it in the environment",
                invocation.program.to_string_lossy()
            ))
        }
        other => other,
    })?;
    Ok((command, stdout, stderr))
}

/// A pipe for a command's output: the write end blocking (the command's, as a program's
/// output normally is), the read end non-blocking and the runtime's. Made so at once,
/// not turned from tokio's pipe (both ends registered, then the writer taken back and
/// made blocking): three system calls fewer a pipe, two pipes a command.
fn output_pipe() -> std::io::Result<(OwnedFd, pipe::Receiver)> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    let receiver = pipe::Receiver::from_owned_fd_unchecked(read)?;
    Ok((write, receiver))
}

/// A served command and what kills it.
struct Served<'a> {
    command: ServedCommand,
    mark: String,
    cgroup: Option<&'a PidsCgroup>,
    /// Landlock: the command's group, in the agent's own PID space.
    local_group: Option<ProcessGroup>,
    killed: bool,
}

impl Served<'_> {
    /// Kills what the agent can reach itself: the cgroup's members, the local group.
    /// Returns whether the server must still be asked.
    fn kill_here(&mut self) -> bool {
        self.killed = true;
        if let Some(cgroup) = self.cgroup {
            for _ in 0..KILL_ROUNDS {
                if cgroup.kill_members() == 0 {
                    break;
                }
                std::thread::sleep(KILL_PAUSE);
            }
        }
        match &mut self.local_group {
            Some(group) => {
                group.kill();
                false
            }
            None => self.cgroup.is_none(),
        }
    }
}

impl Running for Served<'_> {
    async fn wait(&mut self) -> Result<ExitStatus, ToolError> {
        self.command
            .wait()
            .await
            .map_err(|err| ToolError::rejected(err.to_string()))
    }

    async fn kill(&mut self) {
        if self.killed {
            return;
        }
        if self.kill_here()
            && let Err(err) = self.command.kill(&self.mark).await
        {
            tracing::warn!(error = %err, "the sandbox server could not kill a command");
        }
    }
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        if !self.killed && self.kill_here() {
            let _ = self.command.request_kill(&self.mark);
        }
    }
}
