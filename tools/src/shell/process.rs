//! One command's life: spawn it as its own process group, capture its output in bounded
//! memory, and make sure no process of that group outlives the call.
//!
//! Why a process group: `bash -c` may start children and grandchildren (`make` starting
//! compilers, `npm test` starting a server). Killing only `bash` would leave them running
//! and holding the output pipes. The command is started with `process_group(0)`, so bash
//! leads a new group that its descendants join, and one `killpg(SIGKILL)` ends them all
//! (except a process that deliberately leaves the group with `setsid`; see below).
//!
//! The life of a call:
//! 1. Wait for bash to exit while reading stdout and stderr concurrently, in chunks, into
//!    two [`HeadTailBuffer`]s (so gigabytes of output cost constant memory), until the
//!    deadline.
//! 2. On the deadline: kill the group, reap bash, report a timeout.
//! 3. When bash exits first: give the pipes [`POST_EXIT_DRAIN_GRACE`] to reach end of
//!    file, then kill the group anyway. A background process (`sleep 1000 &`,
//!    `(server &); echo started`) inherits the pipes and would otherwise keep the call
//!    waiting until the timeout. The choice made here is that **no process outlives the
//!    call**: a command cannot leave a daemon behind. The model is told so in the tool
//!    description, and the result says so when a background process held the output open.
//! 4. With the group, kill the processes that left it (`setsid`), found by the mark of
//!    the call in their environment (see [`super::escaped`]). Then wait at most
//!    [`POST_KILL_DRAIN_GRACE`] more for the pipes (a process that also cleared its
//!    environment is out of reach); what was captured so far is returned.
//!
//! If the call's future is dropped (the run was cancelled), the running command's guard
//! kills the group in its `Drop`.
//!
//! How the command is started is the sandbox's business: by the run's sandbox server,
//! inside the one sandbox of the run ([`super::served`], the usual way), or as a child of
//! the agent wrapped in a sandbox of its own ([`super::direct`], where no server
//! program is known). Both hand this module a [`Running`] command and its pipes.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::pin::pin;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{Instant, sleep_until, timeout};

use super::{direct, served};
use crate::error::ToolError;
use crate::output_cap::HeadTailBuffer;
use crate::sandbox::Sandbox;

/// How long the output pipes may stay open after bash exits before the group is killed.
/// Long enough for a pipeline's last writer to flush, short enough not to be noticed.
pub(crate) const POST_EXIT_DRAIN_GRACE: Duration = Duration::from_millis(300);

/// How long to keep reading after the group was killed, for output still in the pipes
/// and for processes that escaped the group (they are not waited for any longer).
pub(crate) const POST_KILL_DRAIN_GRACE: Duration = Duration::from_millis(200);

/// Bytes read from a pipe at a time, at most (a pipe holds 64 KiB)...
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// ...and at first: most commands print little, and two 64 KiB buffers per command made
/// the allocator grow and trim the heap (a `brk` and fresh zeroed pages) every command.
const FIRST_READ_BYTES: usize = 8 * 1024;

/// What to run, fully decided: the tool has already checked the directory, the
/// environment and the timeout.
#[derive(Debug, Clone)]
pub(crate) struct ShellInvocation {
    /// The shell program, looked up on the child's `PATH` (`bash`).
    pub program: OsString,
    /// The command line given to `program -c`.
    pub script: String,
    pub working_dir: PathBuf,
    /// The child's complete environment (nothing else is inherited).
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    /// Bytes kept per stream.
    pub output_cap_bytes: usize,
    /// The sandbox the command runs in, and the workspace it may write.
    pub sandbox: Sandbox,
    pub workspace: PathBuf,
}

/// How a command ended, with what it printed.
#[derive(Debug)]
pub(crate) struct ShellOutcome {
    /// Bash's exit status; for a timeout, the status of bash killed by `SIGKILL`.
    pub status: ExitStatus,
    pub timed_out: bool,
    /// Bash exited, but some process it started still held stdout or stderr open after
    /// the grace period, and was killed.
    pub background_killed: bool,
    /// Even after the kill, a process still held the output open: one that left the
    /// group and cleared its environment (`env -i setsid ...`), which no mark finds. It
    /// runs on until the agent exits (which kills what it adopted) or, in the sandbox,
    /// until the sandbox's PID namespace ends with the call.
    pub background_survived: bool,
    /// A fork was refused because the command reached the sandbox's process cap.
    pub process_cap_hit: bool,
    /// The command changed `.git/hooks` or `.git/config` and that was undone (Landlock
    /// mode, where they cannot be mounted read-only).
    pub git_restored: bool,
    pub duration: Duration,
    pub stdout: HeadTailBuffer,
    pub stderr: HeadTailBuffer,
}

impl ShellOutcome {
    /// The outcome of a supervised command, with what its sandbox adds.
    pub(super) fn of(
        supervised: Supervised,
        process_cap_hit: bool,
        git_restored: bool,
        started: Instant,
    ) -> Self {
        Self {
            status: supervised.status,
            timed_out: supervised.timed_out,
            background_killed: supervised.background_killed,
            background_survived: supervised.background_survived,
            process_cap_hit,
            git_restored,
            duration: started.elapsed(),
            stdout: supervised.stdout,
            stderr: supervised.stderr,
        }
    }

    /// The exit code, when bash exited on its own (not killed by a signal).
    pub fn exit_code(&self) -> Option<i32> {
        if self.timed_out {
            None
        } else {
            self.status.code()
        }
    }

    /// The name of the signal that ended bash (`SIGKILL`, `SIGSEGV`...), if one did.
    pub fn signal_name(&self) -> Option<String> {
        let number = self.status.signal()?;
        Some(match Signal::try_from(number) {
            Ok(signal) => signal.as_str().to_string(),
            Err(_) => format!("signal {number}"),
        })
    }
}

/// Runs one command to completion, timeout or cancellation; see the module docs.
pub(crate) async fn run(invocation: ShellInvocation) -> Result<ShellOutcome, ToolError> {
    let started = Instant::now();
    match invocation
        .sandbox
        .command_server(&invocation.workspace)
        .await
    {
        Some(lease) => served::run(&invocation, lease, started).await,
        None => direct::run(&invocation, started).await,
    }
}

/// A started command, as the supervision below sees it.
pub(super) trait Running {
    /// Waits until the command's first process (bash) has exited. Cancel-safe.
    async fn wait(&mut self) -> Result<ExitStatus, ToolError>;
    /// Kills every process of the command still alive; only the first call acts.
    async fn kill(&mut self);
}

/// How the supervision of a command ended.
pub(super) struct Supervised {
    pub status: ExitStatus,
    pub timed_out: bool,
    pub background_killed: bool,
    pub background_survived: bool,
    pub stdout: HeadTailBuffer,
    pub stderr: HeadTailBuffer,
}

/// Steps 1 to 4 of the module docs: waits for `command` while draining its pipes, until
/// `deadline`, and kills what is left of it.
pub(super) async fn supervise(
    command: &mut impl Running,
    stdout: impl AsyncRead + Unpin,
    stderr: impl AsyncRead + Unpin,
    output_cap_bytes: usize,
    deadline: Instant,
) -> Result<Supervised, ToolError> {
    let mut stdout_buf = HeadTailBuffer::new(output_cap_bytes);
    let mut stderr_buf = HeadTailBuffer::new(output_cap_bytes);
    let mut timed_out = false;
    let mut background_killed = false;
    let mut background_survived = false;

    // The drain future borrows the buffers; this block ends that borrow, whether the pipes
    // reached end of file or were given up on.
    let status = {
        let mut drain = pin!(drain_both(stdout, stderr, &mut stdout_buf, &mut stderr_buf));
        let mut drained = false;

        let exited = loop {
            tokio::select! {
                status = command.wait() => break Some(status),
                () = &mut drain, if !drained => drained = true,
                () = sleep_until(deadline) => break None,
            }
        };

        let status = match exited {
            Some(status) => {
                let status = status?;
                if !drained {
                    drained = timeout(POST_EXIT_DRAIN_GRACE, &mut drain).await.is_ok();
                    background_killed = !drained;
                }
                command.kill().await;
                status
            }
            None => {
                timed_out = true;
                command.kill().await;
                command.wait().await?
            }
        };
        if !drained {
            // Whatever is not read by now belongs to a process outside the group.
            background_survived = timeout(POST_KILL_DRAIN_GRACE, &mut drain).await.is_err();
        }
        status
    };
    Ok(Supervised {
        status,
        timed_out,
        background_killed,
        background_survived,
        stdout: stdout_buf,
        stderr: stderr_buf,
    })
}

pub(super) fn wait_error(err: std::io::Error) -> ToolError {
    ToolError::rejected(format!("lost track of the command's process: {err}"))
}

/// Reads both pipes to end of file at the same time: reading one after the other would
/// deadlock once the child fills the other pipe's buffer and blocks writing to it.
async fn drain_both(
    stdout: impl AsyncRead + Unpin,
    stderr: impl AsyncRead + Unpin,
    stdout_buf: &mut HeadTailBuffer,
    stderr_buf: &mut HeadTailBuffer,
) {
    tokio::join!(drain(stdout, stdout_buf), drain(stderr, stderr_buf));
}

async fn drain(mut pipe: impl AsyncRead + Unpin, into: &mut HeadTailBuffer) {
    // Read into spare capacity (`read_buf`), not a zeroed buffer: zeroing 64 KiB per pipe
    // was a tenth of the agent's own CPU on a session of short commands.
    let mut chunk = Vec::with_capacity(FIRST_READ_BYTES);
    loop {
        chunk.clear();
        match pipe.read_buf(&mut chunk).await {
            Ok(0) => break,
            Ok(read) => {
                into.push(&chunk);
                // A full buffer: the command writes a lot, so read more at a time.
                let capacity = chunk.capacity();
                if read == capacity && capacity < READ_CHUNK_BYTES {
                    chunk.clear();
                    chunk.reserve_exact((capacity * 2).min(READ_CHUNK_BYTES));
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                tracing::debug!(error = %err, "reading a command's output failed; keeping what was read");
                break;
            }
        }
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
