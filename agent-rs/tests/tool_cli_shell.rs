//! `agent-rs tool run_shell_command` as a real process: what a command inherits from the
//! agent's environment, and how refusals and failures reach the caller.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const AGENT: &str = env!("CARGO_BIN_EXE_agent-rs");

fn run_shell(workspace: &Path, args: serde_json::Value) -> Command {
    let mut command = Command::new(AGENT);
    command
        .args(["tool", "run_shell_command", "--dir"])
        .arg(workspace)
        .args(["--args", &args.to_string()]);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn agent_credentials_are_not_in_a_commands_environment() {
    let workspace = tempfile::tempdir().unwrap();
    let config = workspace.path().join("agent.toml");
    std::fs::write(
        &config,
        "[tools.shell]\nsecret_env_vars = [\"PLAIN_LOOKING_SETTING\"]\n",
    )
    .unwrap();
    let secrets = [
        ("OPENAI_API_KEY", "sk-test-openai-0123456789"),
        ("GITHUB_TOKEN", "ghp_test0123456789abcdef"),
        ("MY_SERVICE_TOKEN", "svc-test-0123456789"),
        ("PLAIN_LOOKING_SETTING", "configured-secret-0123456789"),
    ];

    let mut command = run_shell(
        workspace.path(),
        serde_json::json!({"command_string": "env"}),
    );
    command
        .arg("--config")
        .arg(&config)
        .env("VISIBLE_SETTING", "visible-value-0123456789");
    for (name, value) in secrets {
        command.env(name, value);
    }
    let output: Output = command.output().unwrap();
    let stdout = text(&output.stdout);

    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    // The command really printed its environment: ordinary variables pass through.
    assert!(
        stdout.contains("VISIBLE_SETTING=visible-value-0123456789"),
        "{stdout}"
    );
    for (name, value) in secrets {
        assert!(!stdout.contains(name), "{name} reached the command");
        assert!(
            !stdout.contains(value),
            "the value of {name} reached the command"
        );
    }
    // Removed before the command ran, not redacted afterwards.
    assert!(!stdout.contains("[REDACTED]"), "{stdout}");
}

#[test]
fn missing_bash_is_a_refusal_with_the_reason() {
    let workspace = tempfile::tempdir().unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    let output = run_shell(
        workspace.path(),
        serde_json::json!({"command_string": "true"}),
    )
    .args(["--sandbox", "off"])
    .env("PATH", empty_path.path())
    .output()
    .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`bash` was not found on PATH"), "{stderr}");
}

#[test]
fn failing_command_exits_one_with_details_in_json() {
    let workspace = tempfile::tempdir().unwrap();
    let output = run_shell(
        workspace.path(),
        serde_json::json!({"command_string": "echo partial; exit 3"}),
    )
    .arg("--json")
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["success"], false);
    assert_eq!(result["details"]["exit_code"], 3);
    assert_eq!(result["details"]["timed_out"], false);
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains("stdout:\npartial"),
        "{result}"
    );
}

/// Whether a process is gone (or a zombie, dead and only waiting to be reaped).
fn is_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn without_bubblewrap_the_tool_refuses_saying_what_to_install() {
    let workspace = tempfile::tempdir().unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    let output = run_shell(
        workspace.path(),
        serde_json::json!({"command_string": "true"}),
    )
    .env("PATH", empty_path.path())
    .output()
    .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install bubblewrap"), "{stderr}");
    assert!(stderr.contains("--sandbox off"), "{stderr}");
}

/// Unsandboxed: the pid the command writes is the host's (in the sandbox the PID
/// namespace is the fence, tested in the tools crate).
#[test]
fn a_setsid_process_does_not_outlive_agent_rs_tool() {
    escaped_process_does_not_outlive_agent_rs_tool("setsid sleep 1000");
}

/// Without the call's mark in its environment, it is found as a process adopted by
/// `agent-rs tool` once its parent is gone.
#[test]
fn a_setsid_process_that_cleared_its_environment_does_not_outlive_agent_rs_tool() {
    escaped_process_does_not_outlive_agent_rs_tool("env -i PATH=\"$PATH\" setsid sleep 1000");
}

fn escaped_process_does_not_outlive_agent_rs_tool(escape: &str) {
    let workspace = tempfile::tempdir().unwrap();
    let output = run_shell(
        workspace.path(),
        // The command waits until the process is `sleep` (out of the group), or the
        // group kill at its end could catch it before it left.
        serde_json::json!({"command_string": format!(
            "{escape} & echo $! > escaped.pid; \
             until [ \"$(cat /proc/$!/comm)\" = sleep ]; do sleep 0.01; done; echo hi"
        )}),
    )
    .args(["--sandbox", "off"])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let pid: i32 = std::fs::read_to_string(workspace.path().join("escaped.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !is_gone(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let survived = !is_gone(pid);
    if survived {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(!survived, "the setsid process outlived `agent-rs tool`");
}
