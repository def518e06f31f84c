//! How a call ends: timeouts, cancellation and background processes, and proof that no
//! process of the command's group survives any of them.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tools::config::ShellConfig;

use crate::support::{Workspace, is_gone, read_pid, wait_for_pid_file, wait_until_gone};

#[tokio::test]
async fn timeout_kills_the_command_and_its_grandchildren() {
    let ws = Workspace::new();
    let output = ws
        .call(json!({
            "command_string": "echo $$ > bash.pid; sleep 300 & echo $! > grandchild.pid; wait",
            "timeout_seconds": 1,
        }))
        .await
        .unwrap();
    assert!(!output.success);
    assert!(
        output
            .content
            .starts_with("timed out after 1s; process group killed\n"),
        "{}",
        output.content
    );
    assert_eq!(output.details["timed_out"], true);
    assert_eq!(output.details["exit_code"], Value::Null);
    wait_until_gone(read_pid(&ws.path("grandchild.pid")).unwrap()).await;
    wait_until_gone(read_pid(&ws.path("bash.pid")).unwrap()).await;
}

#[tokio::test]
async fn output_printed_before_a_timeout_is_kept() {
    let ws = Workspace::new();
    let output = ws
        .call(json!({"command_string": "echo started; echo oops >&2; sleep 300", "timeout_seconds": 1}))
        .await
        .unwrap();
    assert_eq!(output.details["timed_out"], true);
    assert!(
        output.content.contains("stdout:\nstarted\nstderr:\noops"),
        "{}",
        output.content
    );
}

#[tokio::test]
async fn configured_default_timeout_applies_when_none_is_given() {
    let ws = Workspace::with_config(ShellConfig {
        default_timeout_secs: 1,
        ..ShellConfig::default()
    });
    let output = ws.run("sleep 300").await;
    assert_eq!(output.details["timed_out"], true);
    assert_eq!(output.details["timeout_secs"], 1);
}

#[tokio::test]
async fn timeout_above_the_maximum_is_clamped_and_the_output_says_so() {
    let ws = Workspace::with_config(ShellConfig {
        max_timeout_secs: 1,
        ..ShellConfig::default()
    });
    let output = ws
        .call(json!({"command_string": "sleep 300", "timeout_seconds": 3600}))
        .await
        .unwrap();
    assert_eq!(output.details["timed_out"], true);
    assert_eq!(output.details["timeout_secs"], 1);
    assert_eq!(output.details["timeout_clamped"], true);
    assert!(
        output
            .content
            .contains("timeout_seconds 3600 is above the maximum of 1"),
        "{}",
        output.content
    );
}

#[tokio::test]
async fn cancelled_call_kills_the_process_group() {
    let ws = Workspace::new();
    let call = ws.call(json!({
        "command_string": "echo $$ > bash.pid; sleep 300 & echo $! > grandchild.pid; wait",
        "timeout_seconds": 600,
    }));
    let grandchild_pid_file = ws.path("grandchild.pid");
    let grandchild = tokio::select! {
        result = call => panic!("the call ended before it was cancelled: {result:?}"),
        pid = wait_for_pid_file(&grandchild_pid_file) => pid,
    };
    // Leaving `select!` dropped the call's future: that is the cancellation.
    wait_until_gone(grandchild).await;
    wait_until_gone(read_pid(&ws.path("bash.pid")).unwrap()).await;
}

// ---- background processes ----

/// A timeout far above the grace period: reaching it would mean the call hung on the
/// background process's open pipes.
const BACKGROUND_TEST_TIMEOUT: u64 = 120;

#[tokio::test]
async fn background_process_holding_the_pipes_does_not_hang_the_call() {
    let ws = Workspace::new();
    let output = ws
        .call(json!({
            "command_string": "sleep 1000 & echo $! > bg.pid; echo hi",
            "timeout_seconds": BACKGROUND_TEST_TIMEOUT,
        }))
        .await
        .unwrap();
    assert_eq!(output.details["timed_out"], false);
    assert!(output.success, "{}", output.content);
    assert!(output.content.contains("stdout:\nhi"), "{}", output.content);
    assert_eq!(output.details["background_killed"], true);
    assert!(output.content.contains("note: a background process"));
    wait_until_gone(read_pid(&ws.path("bg.pid")).unwrap()).await;
}

#[tokio::test]
async fn process_backgrounded_in_a_subshell_does_not_hang_the_call() {
    let ws = Workspace::new();
    let output = ws
        .call(json!({
            "command_string": "(sleep 1000 & echo $! > bg.pid); echo hi",
            "timeout_seconds": BACKGROUND_TEST_TIMEOUT,
        }))
        .await
        .unwrap();
    assert_eq!(output.details["timed_out"], false);
    assert!(output.content.contains("stdout:\nhi"), "{}", output.content);
    wait_until_gone(read_pid(&ws.path("bg.pid")).unwrap()).await;
}

#[tokio::test]
async fn silent_background_process_is_killed_when_the_call_ends() {
    let ws = Workspace::new();
    let output = ws
        .call(json!({
            "command_string": "sleep 1000 > /dev/null 2>&1 & echo $! > bg.pid",
            "timeout_seconds": BACKGROUND_TEST_TIMEOUT,
        }))
        .await
        .unwrap();
    assert!(output.success, "{}", output.content);
    assert_eq!(output.details["background_killed"], false);
    wait_until_gone(read_pid(&ws.path("bg.pid")).unwrap()).await;
}

/// `setsid` takes a process out of the group, out of reach of the group kill; the mark
/// of the call in its environment still finds it, and the call neither hangs nor leaves
/// it running. Double escapes (a new session started from a new session) too.
#[tokio::test]
async fn a_process_that_left_the_group_is_killed_with_the_call() {
    let ws = Workspace::new();
    let output = ws
        .call(json!({
            "command_string": "setsid sleep 1000 & echo $! > escaped.pid; \
                setsid bash -c 'setsid sleep 1000 & echo $! > inner.pid; sleep 1000' & \
                echo $! > outer.pid; sleep 0.2; echo hi",
            "timeout_seconds": BACKGROUND_TEST_TIMEOUT,
        }))
        .await
        .unwrap();
    let pids: Vec<Pid> = ["escaped.pid", "outer.pid", "inner.pid"]
        .iter()
        .map(|name| read_pid(&ws.path(name)).unwrap())
        .collect();
    // SIGKILL is not instant: give the kernel a moment before judging.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while pids.iter().any(|pid| !is_gone(*pid)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let survivors: Vec<Pid> = pids.iter().copied().filter(|pid| !is_gone(*pid)).collect();
    // Clean up before asserting, so a failure does not leave the processes behind.
    for pid in &survivors {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    assert_eq!(survivors, Vec::<Pid>::new(), "processes outlived the call");
    assert_eq!(output.details["timed_out"], false);
    assert!(output.content.contains("stdout:\nhi"), "{}", output.content);
}
