//! Hung programs: an agent past its time limit and a check past its own are killed with
//! everything they started, the attempt fails with the reason, and the run goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness_support;

use std::path::Path;
use std::time::{Duration, Instant};

use harness_support::*;

/// A stand-in for `agent-rs` that hangs (with a background child) when the task (its
/// last argument) says PLEASE_HANG, and otherwise succeeds at once.
fn fake_agent(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("fake-agent");
    write(
        &path,
        &format!(
            "#!/bin/sh\nfor task; do :; done\ncase \"$task\" in\n  *PLEASE_HANG*) sleep 600 & echo $! > {pid}; wait ;;\nesac\nexit 0\n",
            pid = dir.join("agent-child.pid").display()
        ),
    );
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Gone, or a zombie waiting for a reaper that is not ours.
fn process_is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Signal delivery is asynchronous: wait (boundedly) for the process to be gone.
fn await_death(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file).unwrap().trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_is_dead(&pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} outlived its attempt"
        );
        std::thread::yield_now();
    }
}

#[test]
fn hung_agent_and_hung_check_are_killed_with_their_children_and_reported() {
    let root = tempfile::tempdir().unwrap();
    let agent = fake_agent(root.path());
    let check_pid = root.path().join("check-child.pid");
    let suite = suite(root.path(), "name = \"hangs\"\n");
    task(
        &suite,
        "agent-hangs",
        "instruction = \"PLEASE_HANG\"\ncheck = \"true\"\n[limits]\ntimeout_secs = 1\n",
        None,
        &[],
    );
    task(
        &suite,
        "check-hangs",
        &format!(
            "instruction = \"quick\"\ncheck = \"sleep 600 & echo $! > {}; wait\"\n[limits]\ncheck_timeout_secs = 1\n",
            check_pid.display()
        ),
        None,
        &[],
    );
    let out = root.path().join("out");
    let run = run_suite(
        &suite,
        &out,
        &["--agent-bin", agent.to_str().unwrap(), "--kill-grace", "1"],
    );
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
    let report = read_json(&out.join("report.json"));
    let hung = attempt_of(&report, "agent-hangs");
    assert_eq!(hung["passed"], false);
    assert_eq!(hung["reason"], "agent timed out (killed after 2 s)");
    assert_eq!(hung["agent_exit_code"], serde_json::Value::Null);
    assert!(
        !out.join("tasks/agent-hangs/check.log").exists(),
        "no check runs after a killed agent"
    );
    let slow = attempt_of(&report, "check-hangs");
    assert_eq!(slow["passed"], false);
    assert_eq!(slow["agent_exit_code"], 0);
    assert_eq!(slow["reason"], "check timed out (killed after 1 s)");
    await_death(&root.path().join("agent-child.pid"));
    await_death(&check_pid);
}
