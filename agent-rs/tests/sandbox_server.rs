//! The run's sandbox server (`agent-rs sandbox-server`) as real processes: it goes when
//! the agent goes, whether the agent ends or is killed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_agent-rs");

/// `agent-rs tool run_shell_command` running `script` in `workspace` under `mode`.
fn shell(workspace: &Path, mode: &str, script: &str) -> Command {
    let mut command = Command::new(AGENT);
    command
        .args([
            "tool",
            "run_shell_command",
            "--json",
            "--sandbox",
            mode,
            "--dir",
        ])
        .arg(workspace)
        .args([
            "--args",
            &serde_json::json!({"command_string": script}).to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The processes whose command line mentions `needle` (the server's names the
/// workspace: bubblewrap binds it, the Landlock server may write it).
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(needle))
        .collect()
}

fn wait_until_none_mention(needle: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still running: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `mode` works here; outside CI a missing sandbox skips the test.
#[allow(clippy::print_stderr)]
fn usable(mode: &str) -> bool {
    let workspace = tempfile::tempdir().unwrap();
    let output = shell(workspace.path(), mode, "true").output().unwrap();
    if output.status.code() == Some(2) && std::env::var("CI").as_deref() != Ok("true") {
        eprintln!(
            "skipping {mode}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return false;
    }
    true
}

#[test]
fn the_server_goes_when_the_agent_ends() {
    for mode in ["bwrap", "landlock"] {
        if !usable(mode) {
            continue;
        }
        let workspace = tempfile::tempdir().unwrap();
        let output = shell(workspace.path(), mode, "echo served")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{mode}: {stdout}");
        assert!(stdout.contains("served"), "{mode}: {stdout}");
        wait_until_none_mention(&workspace.path().display().to_string(), mode);
    }
}

#[test]
fn the_server_and_its_commands_go_when_the_agent_is_killed() {
    for mode in ["bwrap", "landlock"] {
        if !usable(mode) {
            continue;
        }
        let workspace = tempfile::tempdir().unwrap();
        let ws = workspace.path().display().to_string();
        // A distinctive duration names the command in the process list.
        let marker = format!("600.{}", std::process::id());
        let mut agent = shell(
            workspace.path(),
            mode,
            &format!("echo up > started; sleep {marker}"),
        )
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !workspace.path().join("started").exists() {
            assert!(
                Instant::now() < deadline,
                "{mode}: the command never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !processes_mentioning(&ws).is_empty(),
            "{mode}: no server seen"
        );
        agent.kill().unwrap();
        agent.wait().unwrap();
        wait_until_none_mention(&ws, mode);
        wait_until_none_mention(&format!("sleep {marker}"), mode);
    }
}
