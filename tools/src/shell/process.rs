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
//! If the call's future is dropped (the run was cancelled), [`ProcessGroup`]'s `Drop`
//! kills the group, and tokio's `kill_on_drop` kills and reaps bash itself.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep_until, timeout};

use super::escaped;
use crate::error::ToolError;
use crate::output_cap::HeadTailBuffer;
use crate::sandbox::{Confinement, GitGuard, PidsCgroup, Sandbox, confine_before_exec};

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
    let deadline = started + invocation.timeout;

    let mark = escaped::new_call_mark();
    // Dropped last: its processes are gone by then, and it is removed.
    let cgroup = invocation.sandbox.pids_cgroup();
    let in_process = InProcess::prepare(&invocation, cgroup.as_ref())?;
    let blocked = cgroup.is_some() && in_process.is_none();
    let mut child = spawn(&invocation, &mark, blocked, in_process.as_ref())?;
    // Declared after `child` so it is dropped first: the group is killed while bash is
    // still unreaped, so its id cannot have been reused.
    // In bubblewrap's PID namespace a process that left the group still dies with the
    // namespace, and the cgroup's removal below waits until it has: the sweep of `/proc`
    // for the call's mark (a few `/proc` reads per command) would find nothing.
    let sweep_marks = !(invocation.sandbox.has_own_pid_namespace() && cgroup.is_some());
    let mut group = ProcessGroup::of(&child, mark, sweep_marks)?;
    if blocked && let Some(cgroup) = &cgroup {
        release_into(cgroup, &mut child).await;
    }
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ToolError::rejected(
            "could not capture the command's output pipes; try again",
        ));
    };

    let mut stdout_buf = HeadTailBuffer::new(invocation.output_cap_bytes);
    let mut stderr_buf = HeadTailBuffer::new(invocation.output_cap_bytes);
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
                status = child.wait() => break Some(status),
                () = &mut drain, if !drained => drained = true,
                () = sleep_until(deadline) => break None,
            }
        };

        let status = match exited {
            Some(status) => {
                let status = status.map_err(wait_error)?;
                if !drained {
                    drained = timeout(POST_EXIT_DRAIN_GRACE, &mut drain).await.is_ok();
                    background_killed = !drained;
                }
                group.kill();
                status
            }
            None => {
                timed_out = true;
                group.kill();
                child.wait().await.map_err(wait_error)?
            }
        };
        if !drained {
            // Whatever is not read by now belongs to a process outside the group.
            background_survived = timeout(POST_KILL_DRAIN_GRACE, &mut drain).await.is_err();
        }
        status
    };

    let process_cap_hit = cgroup.as_ref().is_some_and(PidsCgroup::limit_was_hit);
    // Every process of the command is dead by now (group, marks, cgroup).
    drop(cgroup);
    let git_restored = in_process.is_some_and(|prepared| prepared.finish());
    Ok(ShellOutcome {
        status,
        timed_out,
        background_killed,
        background_survived,
        process_cap_hit,
        git_restored,
        duration: started.elapsed(),
        stdout: stdout_buf,
        stderr: stderr_buf,
    })
}

/// What a command confined in its own process (Landlock mode) needs around it: its
/// private temporary folder, the rules applied between fork and exec, the `pids`
/// cgroup it joins there, and the guard of `.git`'s hooks and config.
struct InProcess {
    tmp: tempfile::TempDir,
    confinement: std::sync::Mutex<Option<Confinement>>,
    cgroup_procs: Option<std::fs::File>,
    git: Option<GitGuard>,
}

impl InProcess {
    fn prepare(
        invocation: &ShellInvocation,
        cgroup: Option<&PidsCgroup>,
    ) -> Result<Option<Self>, ToolError> {
        if !invocation.sandbox.confines_in_process() {
            return Ok(None);
        }
        let tmp = tempfile::Builder::new()
            .prefix("agent-rs-cmd-")
            .tempdir()
            .map_err(|err| {
                ToolError::rejected(format!("cannot make the command's private TMPDIR: {err}"))
            })?;
        let writable = [invocation.workspace.as_path(), tmp.path()];
        let confinement = match invocation.sandbox.confinement(&writable) {
            Some(Ok(confinement)) => Some(confinement),
            Some(Err(err)) => {
                return Err(ToolError::rejected(format!(
                    "cannot build the command's Landlock and seccomp rules: {err}"
                )));
            }
            None => None,
        };
        let cgroup_procs = match cgroup.map(PidsCgroup::procs_file).transpose() {
            Ok(file) => file,
            Err(err) => {
                tracing::warn!(error = %err, "cannot open a pids cgroup; the command runs uncapped");
                None
            }
        };
        Ok(Some(Self {
            tmp,
            confinement: std::sync::Mutex::new(confinement),
            cgroup_procs,
            git: GitGuard::record(&invocation.workspace),
        }))
    }

    /// Installs the hook that confines the child before it runs the command.
    fn install(&self, command: &mut Command) -> Result<(), ToolError> {
        let mut confinement = self
            .confinement
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .ok_or_else(|| ToolError::rejected("the command's sandbox rules are missing"))?;
        let procs = match self.cgroup_procs.as_ref().map(std::fs::File::try_clone) {
            Some(Ok(file)) => Some(file),
            Some(Err(err)) => {
                tracing::warn!(error = %err, "cannot share a pids cgroup; the command runs uncapped");
                None
            }
            None => None,
        };
        // In the child: join the cgroup ("0" moves the writer, so the command starts
        // inside its cap), then confine. System calls only.
        confine_before_exec(command.as_std_mut(), move || {
            if let Some(procs) = &procs {
                nix::unistd::write(procs, b"0")?;
            }
            confinement.apply()
        });
        Ok(())
    }

    /// Removes the private folder and undoes changes to `.git`'s hooks and config;
    /// returns whether there were any.
    fn finish(self) -> bool {
        let restored = self.git.as_ref().is_some_and(GitGuard::restore);
        drop(self.tmp);
        restored
    }
}

/// Starts the command, in its sandbox. `blocked`: the sandbox waits for a byte on stdin
/// before it starts the command ([`release_into`]); bubblewrap then closes that stdin,
/// so the script reopens it on `/dev/null` first (on the same line, so the line numbers
/// of its errors do not move). `in_process`: the command confines itself (Landlock).
fn spawn(
    invocation: &ShellInvocation,
    mark: &str,
    blocked: bool,
    in_process: Option<&InProcess>,
) -> Result<Child, ToolError> {
    let script = if blocked {
        format!("exec </dev/null; {}", invocation.script)
    } else {
        invocation.script.clone()
    };
    let argv = invocation.sandbox.wrap(
        &invocation.workspace,
        &invocation.working_dir,
        vec![invocation.program.clone(), "-c".into(), script.into()],
        blocked,
    );
    let (program, args) = argv.split_first().ok_or_else(|| {
        ToolError::rejected("the sandbox produced an empty command line; this is a bug")
    })?;
    let mut command = Command::new(on_child_path(program, &invocation.env));
    if let Some(in_process) = in_process {
        in_process.install(&mut command)?;
    }
    command
        .args(args)
        .current_dir(&invocation.working_dir)
        .env_clear()
        .envs(invocation.env.iter().map(|(name, value)| (name, value)))
        .envs(invocation.sandbox.command_env())
        .envs(in_process.map(|p| ("TMPDIR", p.tmp.path())))
        .env(escaped::CALL_MARK_VAR, mark)
        .stdin(if blocked {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| {
            let program = program.to_string_lossy();
            let reason = if err.kind() == std::io::ErrorKind::NotFound {
                format!("`{program}` was not found on PATH")
            } else {
                err.to_string()
            };
            ToolError::rejected(format!(
                "cannot start the command: {reason}; run_shell_command needs `{program}` in the environment"
            ))
        })
}

/// `program` as the child would find it on its `PATH` (in `env`), as a full path.
///
/// The standard library starts a program given by its full path with `posix_spawn`,
/// which shares the agent's memory with the child until `exec` (like `vfork`), but one
/// looked up on a `PATH` other than the agent's by `fork`, which copies the agent's page
/// tables and then pays a page fault for every page either side writes: most of the
/// agent's own cost of a command without a sandbox. A name not found on `PATH`, or
/// behind a relative folder of it, is left as it is (the lookup and its error stay the
/// child's).
fn on_child_path(program: &OsString, env: &[(OsString, OsString)]) -> OsString {
    use std::os::unix::fs::PermissionsExt;
    let is_name = !program.as_encoded_bytes().contains(&b'/');
    let path = env
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| value);
    let (true, Some(path)) = (is_name, path) else {
        return program.clone();
    };
    for dir in std::env::split_paths(path) {
        if !dir.is_absolute() {
            // Relative to the child's working folder: its own lookup decides.
            return program.clone();
        }
        let candidate = dir.join(program);
        if std::fs::metadata(&candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        {
            return candidate.into_os_string();
        }
    }
    program.clone()
}

/// Puts the blocked sandbox (and what it forked so far) into `cgroup`, then lets the
/// command start. Without the cgroup the command still runs, uncapped.
async fn release_into(cgroup: &PidsCgroup, child: &mut Child) {
    use tokio::io::AsyncWriteExt;
    if let Some(pid) = child.id()
        && let Err(err) = cgroup.adopt_tree(pid)
    {
        tracing::warn!(error = %err, "cannot put a command in its pids cgroup; it runs uncapped");
    }
    if let Some(mut stdin) = child.stdin.take() {
        // A sandbox that failed to start has closed its end; its stderr says why.
        let _ = stdin.write_all(b"x").await;
    }
}

fn wait_error(err: std::io::Error) -> ToolError {
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

/// The process group a command leads (and the processes that left it, by the call's
/// mark); killed with `SIGKILL` when this guard is dropped unless [`ProcessGroup::kill`]
/// already ran.
#[derive(Debug)]
struct ProcessGroup {
    pgid: Pid,
    mark: String,
    /// Where the processes carrying the mark can be (started after the group's leader).
    window: escaped::PidWindow,
    /// Whether processes that left the group are looked for by their mark.
    sweep_marks: bool,
    killed: bool,
}

impl ProcessGroup {
    /// The group of a child spawned with `process_group(0)`: its id is the child's pid.
    fn of(child: &Child, mark: String, sweep_marks: bool) -> Result<Self, ToolError> {
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| ToolError::rejected("the command exited before it could be tracked"))?;
        Ok(Self {
            pgid: Pid::from_raw(pid),
            mark,
            window: escaped::PidWindow::from(pid.unsigned_abs()),
            sweep_marks,
            killed: false,
        })
    }

    /// Sends `SIGKILL` to every process still in the group, then to those that left it.
    /// Only the first call signals.
    fn kill(&mut self) {
        if self.killed {
            return;
        }
        self.killed = true;
        match killpg(self.pgid, Signal::SIGKILL) {
            // ESRCH: nothing left in the group, the usual case after a clean exit.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(err) => {
                tracing::warn!(pgid = self.pgid.as_raw(), error = %err, "could not kill a command's process group");
            }
        }
        if self.sweep_marks {
            escaped::kill_marked(&self.mark, self.window);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
