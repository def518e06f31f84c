//! Bubblewrap's command line for a sandboxed command, and the check that it works here.
//!
//! Why each argument:
//! - `--unshare-user --cap-drop ALL` (and `--disable-userns` where supported): even when
//!   the agent runs as root, the command holds no capability over the host, so it cannot
//!   remount the read-only root or unmount what hides a folder. (Without a user namespace
//!   a root command keeps every capability and `mount -o remount,rw /` succeeds.)
//! - `--unshare-pid --proc /proc`: no other process is visible or signalable, and
//!   `/proc/<pid>/environ` of the agent or the server cannot be read.
//! - `--unshare-net` unless the run allows the network: only a private loopback exists,
//!   so connecting fails at once instead of hanging. With an allow-list, the proxy's
//!   socket folder and the relay are mounted on an empty `/run` (see [`super::network`]).
//! - `--die-with-parent`: if the agent dies, the sandbox goes with it.
//! - `--ro-bind / /`, then `--tmpfs /tmp`, the hidden paths, then `--bind` the workspace
//!   and `--ro-bind` its `.git`: later mounts win, and bind sources are read from the
//!   host, so a workspace under `/tmp` still shows through the private `/tmp`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::git_dirs::guarded_git_dirs;
use super::{GitProtection, NetworkAccess, Sandbox};

/// The program's name, looked up on `PATH`.
const PROGRAM: &str = "bwrap";

/// Where `bwrap` is on `search_path`, if anywhere.
pub(super) fn find(search_path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(search_path?)
        .map(|dir| dir.join(PROGRAM))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Bubblewrap's options (everything before `--`). `workspace` is bound writable, its
/// `.git` read-only; `blocked_on_stdin` makes the sandbox wait for a byte on stdin
/// before it starts the command.
pub(super) fn args(
    sandbox: &Sandbox,
    workspace: Option<(&Path, &Path)>,
    blocked_on_stdin: bool,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--unshare-user",
        "--cap-drop",
        "ALL",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    if sandbox.disable_userns() {
        args.push("--disable-userns".into());
    }
    if sandbox.network != NetworkAccess::On {
        args.push("--unshare-net".into());
    }
    for hidden in &sandbox.hidden {
        if hidden.is_dir() {
            args.push("--tmpfs".into());
        } else {
            args.extend(["--ro-bind".into(), OsString::from("/dev/null")]);
        }
        args.push(hidden.clone().into_os_string());
    }
    args.extend(sandbox.egress_mounts());
    if let Some((workspace, working_dir)) = workspace {
        args.extend([
            "--bind".into(),
            workspace.as_os_str().to_owned(),
            workspace.as_os_str().to_owned(),
        ]);
        for protected in git_read_only(workspace, sandbox.git) {
            args.extend([
                "--ro-bind".into(),
                protected.clone().into_os_string(),
                protected.into_os_string(),
            ]);
        }
        args.extend(["--chdir".into(), working_dir.as_os_str().to_owned()]);
    }
    if blocked_on_stdin {
        args.extend(["--block-fd".into(), "0".into()]);
    }
    args
}

/// The parts of `workspace/.git` bound read-only: the hooks and config of it and of its
/// submodules' git directories ([`guarded_git_dirs`]). An absent `hooks` folder is made
/// (empty, as `git init` would), so a hook cannot be planted where none was.
pub(super) fn git_read_only(workspace: &Path, protection: GitProtection) -> Vec<PathBuf> {
    let git = workspace.join(".git");
    if !git.exists() {
        return Vec::new();
    }
    match protection {
        GitProtection::ReadOnly => vec![git],
        GitProtection::HooksAndConfig if git.is_dir() => guarded_git_dirs(workspace)
            .into_iter()
            .flat_map(|dir| {
                let _ = std::fs::create_dir_all(dir.join("hooks"));
                [dir.join("hooks"), dir.join("config")]
            })
            .filter(|path| path.exists())
            .collect(),
        // A `.git` file (a worktree or submodule) points elsewhere; the file itself is
        // what is here to protect.
        GitProtection::HooksAndConfig => vec![git],
    }
}

/// Whether this bubblewrap knows `--disable-userns` (0.8 and later). A compiled
/// bubblewrap holds the option's name in its text (its parser compares arguments with it,
/// its help lists it), so the file is read, not run: `bwrap --help` cost about 2 ms of
/// CPU a run, the dynamic loader's mostly. A program that is not an ELF file (a wrapper
/// script) is asked for its help.
pub(super) fn supports_disable_userns(program: &Path) -> bool {
    const OPTION: &[u8] = b"--disable-userns";
    match std::fs::read(program) {
        Ok(bytes) if bytes.starts_with(b"\x7fELF") => {
            memchr::memmem::find(&bytes, OPTION).is_some()
        }
        _ => help_lists(program, OPTION),
    }
}

fn help_lists(program: &Path, option: &[u8]) -> bool {
    Command::new(program)
        .arg("--help")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| memchr::memmem::find(&out.stdout, option).is_some())
}

/// Runs `true` in the sandbox once; the error is bubblewrap's own explanation.
pub(super) fn probe(program: &Path, sandbox: &Sandbox) -> Result<(), String> {
    let output = Command::new(program)
        .args(args(sandbox, None, false))
        .arg("--")
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|err| format!("cannot run `{}`: {err}", program.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    Err(if stderr.is_empty() {
        format!("`{}` exited with {}", program.display(), output.status)
    } else {
        stderr.to_string()
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Read from the file, the answer is the one the program's help gives; a wrapper
    /// script is asked, and says what the program behind it says.
    #[test]
    fn the_option_is_found_as_the_help_would_say() {
        let bwrap = find(std::env::var_os("PATH").as_deref())
            .expect("bubblewrap is missing (scripts/test installs it)");
        let expected = help_lists(&bwrap, b"--disable-userns");
        assert_eq!(supports_disable_userns(&bwrap), expected);
        let dir = tempfile::tempdir().unwrap();
        let wrapper = script(
            dir.path(),
            "bwrap-wrapper",
            &format!("exec {} \"$@\"", bwrap.display()),
        );
        assert_eq!(supports_disable_userns(&wrapper), expected);
        let older = script(
            dir.path(),
            "bwrap-0.7",
            "echo '--unshare-user  Create new user namespace'",
        );
        assert!(!supports_disable_userns(&older));
        let newer = script(
            dir.path(),
            "bwrap-0.9",
            "echo '--disable-userns  Disable further use'",
        );
        assert!(supports_disable_userns(&newer));
    }
}
