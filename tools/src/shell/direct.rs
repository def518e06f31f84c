//! A command started by the agent itself, in a sandbox of its own: the way commands ran
//! before the run's sandbox server ([`crate::sandbox`]'s `server`), kept for runs that
//! know no server program (a library caller, the tools' own tests) and for no sandbox
//! at all (`--sandbox off`, where nothing needs serving).
//!
//! Under bubblewrap, the command line is wrapped in `bwrap` (a sandbox per command,
//! whose PID namespace ends with it); under Landlock, the child confines itself between
//! fork and exec, in a private `TMPDIR` made for it ([`InProcess`]).

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::escaped;
use super::process::{Running, ShellInvocation, ShellOutcome, supervise, wait_error};
use crate::error::ToolError;
use crate::sandbox::{Confinement, GitGuard, PidsCgroup, confine_before_exec};

/// Runs the command as the agent's child; see the module docs.
pub(super) async fn run(
    invocation: &ShellInvocation,
    started: Instant,
) -> Result<ShellOutcome, ToolError> {
    let deadline = started + invocation.timeout;
    let mark = escaped::new_call_mark();
    // Dropped last: its processes are gone by then, and it is removed.
    let cgroup = invocation.sandbox.pids_cgroup();
    let in_process = InProcess::prepare(invocation, cgroup.as_ref())?;
    let blocked = cgroup.is_some() && in_process.is_none();
    let mut child = spawn(invocation, &mark, blocked, in_process.as_ref())?;
    // In bubblewrap's PID namespace a process that left the group still dies with the
    // namespace, and the cgroup's removal below waits until it has: the sweep of `/proc`
    // for the call's mark (a few `/proc` reads per command) would find nothing.
    let sweep_marks = !(invocation.sandbox.has_own_pid_namespace() && cgroup.is_some());
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| ToolError::rejected("the command exited before it could be tracked"))?;
    let group = ProcessGroup::new(pid, mark, sweep_marks);
    if blocked && let Some(cgroup) = &cgroup {
        release_into(cgroup, &mut child).await;
    }
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ToolError::rejected(
            "could not capture the command's output pipes; try again",
        ));
    };
    // The group is declared after the child in `Direct`, so it is dropped first: the
    // group is killed while bash is still unreaped, so its id cannot have been reused.
    let mut running = Direct { child, group };
    let supervised = supervise(
        &mut running,
        stdout,
        stderr,
        invocation.output_cap_bytes,
        deadline,
    )
    .await?;
    drop(running);
    let process_cap_hit = cgroup.as_ref().is_some_and(PidsCgroup::limit_was_hit);
    // Every process of the command is dead by now (group, marks, cgroup).
    drop(cgroup);
    let git_restored = in_process.is_some_and(|prepared| prepared.finish());
    Ok(ShellOutcome::of(
        supervised,
        process_cap_hit,
        git_restored,
        started,
    ))
}

/// The agent's child and its group.
struct Direct {
    child: Child,
    group: ProcessGroup,
}

impl Running for Direct {
    async fn wait(&mut self) -> Result<ExitStatus, ToolError> {
        self.child.wait().await.map_err(wait_error)
    }

    async fn kill(&mut self) {
        self.group.kill();
    }
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
        let cgroup_procs = match cgroup
            .map(|cgroup| cgroup.procs_file().and_then(std::fs::File::try_clone))
            .transpose()
        {
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
/// child's). The last one found is remembered while it stays there: a program of the
/// same name put earlier on `PATH` later in the run is not picked up (as a shell's own
/// command hash would not).
pub(super) fn on_child_path(program: &OsString, env: &[(OsString, OsString)]) -> OsString {
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
    let is_program = |candidate: &std::path::Path| {
        std::fs::metadata(candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    // Every command of a run starts the same shell on the same `PATH`: the lookup (a
    // failed `stat` per folder before the one that has it) is made once, and later
    // commands only check the program found is still there.
    if let Ok(found) = FOUND_ON_PATH.lock()
        && let Some((name, searched, full)) = found.as_ref()
        && name == program
        && searched == path
        && is_program(std::path::Path::new(full))
    {
        return full.clone();
    }
    for dir in std::env::split_paths(path) {
        if !dir.is_absolute() {
            // Relative to the child's working folder: its own lookup decides.
            return program.clone();
        }
        let candidate = dir.join(program);
        if is_program(&candidate) {
            let full = candidate.into_os_string();
            if let Ok(mut found) = FOUND_ON_PATH.lock() {
                *found = Some((program.clone(), path.clone(), full.clone()));
            }
            return full;
        }
    }
    program.clone()
}

/// The last program [`on_child_path`] found: its name, the `PATH` searched, its path.
type FoundOnPath = Option<(OsString, OsString, OsString)>;
static FOUND_ON_PATH: std::sync::Mutex<FoundOnPath> = std::sync::Mutex::new(None);

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

/// The process group a command leads (and the processes that left it, by the call's
/// mark); killed with `SIGKILL` when this guard is dropped unless [`ProcessGroup::kill`]
/// already ran.
#[derive(Debug)]
pub(super) struct ProcessGroup {
    pgid: Pid,
    mark: String,
    /// Where the processes carrying the mark can be (started after the group's leader).
    window: escaped::PidWindow,
    /// Whether processes that left the group are looked for by their mark.
    sweep_marks: bool,
    killed: bool,
}

impl ProcessGroup {
    /// The group led by `pid` (started with `process_group(0)`, so the group's id is
    /// its pid).
    pub(super) fn new(pid: i32, mark: String, sweep_marks: bool) -> Self {
        Self {
            pgid: Pid::from_raw(pid),
            mark,
            window: escaped::PidWindow::from(pid.unsigned_abs()),
            sweep_marks,
            killed: false,
        }
    }

    /// Sends `SIGKILL` to every process still in the group, then to those that left it.
    /// Only the first call signals.
    pub(super) fn kill(&mut self) {
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
