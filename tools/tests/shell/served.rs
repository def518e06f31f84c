//! The run's one sandbox and its server: commands of a run share it, yet each one's
//! cleanup ends only its own processes, and a server that dies is replaced.

use std::time::Duration;

use tools::{NetworkAccess, SandboxMode, Tool};

use super::sandboxed::{MODES, Sandboxed};

/// The private temporary folder of the run's commands.
const TMP: &str = "${TMPDIR:-/tmp}";

#[tokio::test]
async fn concurrent_commands_share_the_sandbox_and_one_ending_spares_the_other() {
    for (mode, cap) in [MODES[0], MODES[1], MODES[0], MODES[1]]
        .into_iter()
        .zip([0, 0, 64, 64])
    {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, cap) else {
            return;
        };
        // The long command waits for a file the short one makes, in the run's /tmp;
        // the short one ends (and is cleaned up after) while the long one waits.
        let long_command = format!(
            "echo started > {TMP}/long; for i in $(seq 100); do \
             [ -e {TMP}/short ] && break; sleep 0.05; done; sleep 0.5; cat {TMP}/short"
        );
        let long = sb.run(&long_command);
        let short = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sb.run(&format!(
                "cat {TMP}/long && echo from-short > {TMP}/short && (sleep 600 &)"
            ))
            .await
        };
        let (long, short) = tokio::join!(long, short);
        assert!(short.success, "{mode:?} {cap}: {}", short.content);
        assert!(short.content.contains("started"), "{}", short.content);
        assert!(long.success, "{mode:?} {cap}: {}", long.content);
        assert!(long.content.contains("from-short"), "{}", long.content);
    }
}

#[tokio::test]
async fn processes_a_command_left_are_gone_before_the_next_command() {
    for (mode, cap) in [MODES[0], MODES[1], MODES[0], MODES[1]]
        .into_iter()
        .zip([0, 0, 64, 64])
    {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, cap) else {
            return;
        };
        // In its group, out of it (`setsid`), and out of it after a double fork.
        let output = sb
            .run(&format!(
                "sleep 600 & echo $! > {TMP}/pids; \
                 setsid sleep 600 >/dev/null 2>&1 & echo $! >> {TMP}/pids; \
                 (setsid sh -c 'sleep 600 & echo $! >> {TMP}/pids' >/dev/null 2>&1 &); \
                 sleep 0.2; echo left"
            ))
            .await;
        assert!(
            output.content.contains("left"),
            "{mode:?}: {}",
            output.content
        );
        let output = sb.run(&format!("cat {TMP}/pids")).await;
        let pids: Vec<u32> = output
            .content
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect();
        assert_eq!(pids.len(), 3, "{mode:?}: {}", output.content);
        if mode == SandboxMode::Bwrap {
            // The sandbox's own PID namespace: asked from inside.
            let list = pids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            let output = sb
                .run(&format!(
                    "for pid in {list}; do kill -0 $pid 2>/dev/null && echo alive $pid; done; \
                     echo checked"
                ))
                .await;
            assert!(output.content.contains("checked"), "{}", output.content);
            assert!(
                !output.content.contains("alive"),
                "{cap}: {}",
                output.content
            );
        } else {
            // The agent's own PIDs: a zombie (dead, not yet reaped by init) is gone.
            for pid in pids {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
                assert!(
                    state.is_none_or(|rest| rest.starts_with('Z')),
                    "{cap}: {pid} still runs: {stat}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_killed_server_is_replaced_for_the_next_command() {
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, 0) else {
            return;
        };
        let output = sb.run("echo first").await;
        assert!(output.success, "{mode:?}: {}", output.content);
        assert!(sb.ctx.sandbox.kill_command_server().await);
        let output = sb.run("echo second").await;
        assert!(output.success, "{mode:?}: {}", output.content);
        assert!(output.content.contains("second"), "{}", output.content);
    }
}

#[tokio::test]
async fn a_command_that_kills_the_server_fails_saying_so_and_the_next_one_runs() {
    // Under bubblewrap bash's parent is the server, in the command's reach.
    let Some(sb) = Sandboxed::new(SandboxMode::Bwrap, NetworkAccess::Off, 0) else {
        return;
    };
    let err = tools::shell::ShellTool
        .call(
            &sb.ctx,
            serde_json::json!({"command_string": "kill -9 $PPID; sleep 5"}),
        )
        .await;
    let message = match err {
        Err(err) => err.to_string(),
        Ok(output) => output.content,
    };
    assert!(message.contains("sandbox server stopped"), "{message}");
    let output = sb.run("echo again").await;
    assert!(output.success, "{}", output.content);
}

#[tokio::test]
async fn the_runs_tmp_is_private_and_lasts_the_run() {
    let Some(sb) = Sandboxed::new(SandboxMode::Bwrap, NetworkAccess::Off, 0) else {
        return;
    };
    let name = format!("agent-rs-private-{}", std::process::id());
    let output = sb.run(&format!("echo kept > /tmp/{name}")).await;
    assert!(output.success, "{}", output.content);
    assert!(
        !std::path::Path::new("/tmp").join(&name).exists(),
        "the run's /tmp showed on the host"
    );
    let output = sb.run(&format!("cat /tmp/{name}")).await;
    assert!(output.content.contains("kept"), "{}", output.content);
}

#[tokio::test]
async fn a_git_folder_made_during_the_run_gets_its_hooks_protected() {
    let Some(sb) = Sandboxed::new(SandboxMode::Bwrap, NetworkAccess::Off, 0) else {
        return;
    };
    let output = sb.run("echo before").await;
    assert!(output.success, "{}", output.content);
    // A submodule's git folder, new since the server started.
    let modules = sb.workspace.join(".git/modules/lib");
    std::fs::create_dir_all(modules.join("hooks")).unwrap();
    std::fs::write(modules.join("config"), "[core]\n").unwrap();
    std::fs::write(modules.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    let output = sb
        .run("echo 'echo pwned' > .git/modules/lib/hooks/post-checkout")
        .await;
    assert!(!output.success, "{}", output.content);
    assert!(!modules.join("hooks/post-checkout").exists());
}

/// Under bubblewrap the check that the sandbox works is the run's server itself: the
/// server started then serves the first command, and no sandbox is started twice. A
/// bubblewrap that cannot make the sandbox is refused with its own explanation, or in
/// `auto` mode leaves the run to Landlock.
#[tokio::test]
async fn the_server_that_checks_the_sandbox_serves_the_first_command() {
    use tools::{Sandbox, SandboxConfig};
    let Some(sb) = Sandboxed::new(SandboxMode::Bwrap, NetworkAccess::Off, 0) else {
        return;
    };
    let sandbox = &sb.ctx.sandbox;
    assert!(sandbox.has_spare_server(), "started with the sandbox");
    let output = sb.run("echo served").await;
    assert!(
        output.success && output.content.contains("served"),
        "{}",
        output.content
    );
    assert!(!sandbox.has_spare_server(), "the first command took it");
    // It is the run's server from then on: killed, the next command gets a new one.
    assert!(sandbox.kill_command_server().await);
    let output = sb.run("echo again").await;
    assert!(
        output.success && output.content.contains("again"),
        "{}",
        output.content
    );

    // A bubblewrap that fails: its explanation, then Landlock in `auto` mode.
    let broken = tempfile::tempdir().unwrap();
    let bwrap = broken.path().join("bwrap");
    std::fs::write(
        &bwrap,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&bwrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = std::ffi::OsString::from(format!("{}:/usr/bin:/bin", broken.path().display()));
    let resolve = |mode| {
        Sandbox::resolve_serving(
            &SandboxConfig {
                mode,
                ..SandboxConfig::default()
            },
            None,
            Some(&path),
            super::sandboxed::server_program(),
            &sb.workspace,
        )
    };
    let err = resolve(SandboxMode::Bwrap).unwrap_err().to_string();
    assert!(
        err.contains("No permissions to create new namespace"),
        "{err}"
    );
    let fallback = resolve(SandboxMode::Auto).unwrap();
    assert_eq!(fallback.summary().mode, "landlock");
    assert!(!fallback.has_spare_server());
}
