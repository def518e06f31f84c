//! Keeps the job's own process out of reach of the commands it runs.
//!
//! Inside a container or a Kubernetes pod the runner turns the shell sandbox off (the
//! container is the sandbox), so a command the model writes runs beside the job, as the
//! same user, seeing the same `/proc`. The job's environment holds the model's API key
//! and the presigned URLs, and `/proc/<job pid>/environ` (and `mem`, `maps`, `fd/`) would
//! hand them to `cat`: the commands' own environment is scrubbed (the shell tool drops
//! credential variables), but the job's initial environment block stays in its memory
//! whatever it later removes.
//!
//! `PR_SET_DUMPABLE = 0` closes that: the kernel then owns the process's `/proc` files
//! as root and grants ptrace-mode access (which `environ`, `maps`, `mem` and `fd/`
//! require) only to a holder of `CAP_SYS_PTRACE` (for reading, since Linux 6.x, also of
//! `CAP_PERFMON` or `CAP_SYS_ADMIN`), which no container the runners start has, root
//! inside it or not. The flag is reset by `execve`, so the commands themselves stay
//! ordinary processes (debuggable, readable by the job's orphan and escape checks).
//!
//! Only a job whose commands run unsandboxed does this: bubblewrap gives them a PID
//! namespace without the job in it and Landlock closes the job's `/proc` entries, while
//! a runner without privileges of its own (the embedded process runner, as a plain
//! user) tells its agents apart by reading their `environ`.

/// Makes this process non-dumpable: its `/proc/<pid>` secrets become unreadable to the
/// processes it starts.
pub fn hide_from_children() -> Result<(), String> {
    nix::sys::prctl::set_dumpable(false)
        .map_err(|err| format!("cannot make the job's process private (PR_SET_DUMPABLE): {err}"))?;
    match nix::sys::prctl::get_dumpable() {
        Ok(false) => Ok(()),
        Ok(true) => Err("the job's process is still dumpable after PR_SET_DUMPABLE".to_string()),
        Err(err) => Err(format!("cannot check PR_GET_DUMPABLE: {err}")),
    }
}
