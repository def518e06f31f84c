use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

/// A fake `agent-rs`: a bash script run as `{script} job`.
fn fake_agent(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-agent");
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn runner(dir: &Path, body: &str) -> ProcessRunner {
    ProcessRunner::new(
        fake_agent(dir, body),
        dir.join("runs"),
        Duration::from_millis(300),
    )
}

fn spec(task_id: TaskId, env: &[(&str, &str)]) -> LaunchSpec {
    LaunchSpec {
        task_id,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

async fn collect(stream: BoxStream<'static, RunnerEvent>) -> Vec<RunnerEvent> {
    stream.collect().await
}

fn agent_event(value: serde_json::Value) -> RunnerEvent {
    RunnerEvent::AgentEvent(value)
}

/// Whether a pid names a running (not zombie) process.
fn pid_running(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| process_state(&stat))
        .is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
}

/// Waits (bounded) for a killed process to be gone: SIGKILL is delivered asynchronously,
/// so the process may still be on its way out when the signal call returns.
async fn gone_eventually(pid: i64) -> bool {
    for _ in 0..500 {
        if !pid_running(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn json_lines_become_events_then_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"[ "$1" = job ] || exit 9
echo '{"type":"task_started","n":1}'
echo 'not json at all'
echo '[1,2]'
echo ''
echo '{"type":"task_finished"}'
exit 3"#,
    );
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let events = collect(runner.watch(&handle).await.unwrap()).await;
    assert_eq!(
        events,
        vec![
            agent_event(serde_json::json!({"type":"task_started","n":1})),
            agent_event(serde_json::json!({"type":"task_finished"})),
            RunnerEvent::Exited { code: Some(3) },
        ]
    );
}

#[tokio::test]
async fn agent_sees_only_the_base_env_and_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"printf '{"names":"%s","task":"%s"}\n' "$(compgen -e | tr '\n' ' ')" "$AGENT_TASK""#,
    );
    let task_id = TaskId::new();
    let handle = runner
        .launch(spec(task_id, &[("AGENT_TASK", "fix the bug")]))
        .await
        .unwrap();
    let events = collect(runner.watch(&handle).await.unwrap()).await;
    let RunnerEvent::AgentEvent(event) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(event["task"], "fix the bug");
    let names: Vec<&str> = event["names"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(names.contains(&"PATH"), "{names:?}");
    assert!(names.contains(&"AGENT_TASK_ID"), "{names:?}");
    // Cargo runs tests with CARGO_MANIFEST_DIR set; the agent must not inherit it.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    assert!(!names.contains(&"CARGO_MANIFEST_DIR"), "{names:?}");
    assert_eq!(events.last(), Some(&RunnerEvent::Exited { code: Some(0) }));
}

#[tokio::test]
async fn stderr_goes_to_the_task_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "echo 'agent diagnostics' >&2; exit 0");
    let task_id = TaskId::new();
    let handle = runner.launch(spec(task_id, &[])).await.unwrap();
    collect(runner.watch(&handle).await.unwrap()).await;
    let log = std::fs::read_to_string(runner.log_path(task_id)).unwrap();
    assert_eq!(log, "agent diagnostics\n");
}

#[tokio::test]
async fn cancel_kills_the_agent_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"sleep 1000 &
echo "{\"type\":\"started\",\"child\":$!}"
wait"#,
    );
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = runner.watch(&handle).await.unwrap();
    let Some(RunnerEvent::AgentEvent(started)) = events.next().await else {
        panic!("no start event")
    };
    let child = started["child"].as_i64().unwrap();
    assert!(pid_running(child));
    assert!(runner.is_alive(&handle).await.unwrap());

    runner.cancel(&handle).await.unwrap();

    assert_eq!(
        collect(events).await,
        vec![RunnerEvent::Exited { code: None }]
    );
    assert!(
        gone_eventually(child).await,
        "the agent's child survived the cancel"
    );
    assert!(!runner.is_alive(&handle).await.unwrap());
    // Idempotent: cancelling a finished run is fine.
    runner.cancel(&handle).await.unwrap();
}

#[tokio::test]
async fn cancel_kills_commands_the_agent_started_in_their_own_process_group() {
    // The agent's shell tool runs each command as a group of its own (`setsid` here).
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"setsid sleep 1000 &
echo "{\"type\":\"started\",\"child\":$!}"
wait"#,
    );
    let task_id = TaskId::new();
    let handle = runner.launch(spec(task_id, &[])).await.unwrap();
    let mut events = runner.watch(&handle).await.unwrap();
    let Some(RunnerEvent::AgentEvent(started)) = events.next().await else {
        panic!("no start event")
    };
    let child = started["child"].as_i64().unwrap();
    assert!(pid_running(child));

    runner.cancel(&handle).await.unwrap();

    assert!(
        gone_eventually(child).await,
        "a command in its own process group survived the cancel"
    );
    assert!(task_processes(task_id).is_empty());
}

#[tokio::test]
async fn an_agent_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"trap '' TERM
echo '{"type":"started"}'
while true; do sleep 0.05; done"#,
    );
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = runner.watch(&handle).await.unwrap();
    assert!(matches!(
        events.next().await,
        Some(RunnerEvent::AgentEvent(_))
    ));
    runner.cancel(&handle).await.unwrap();
    assert_eq!(
        collect(events).await,
        vec![RunnerEvent::Exited { code: None }]
    );
    assert!(!runner.is_alive(&handle).await.unwrap());
}

#[tokio::test]
async fn leftover_children_are_killed_when_the_agent_exits() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"sleep 1000 &
echo "{\"type\":\"started\",\"child\":$!}"
exit 0"#,
    );
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let events = collect(runner.watch(&handle).await.unwrap()).await;
    assert_eq!(events.last(), Some(&RunnerEvent::Exited { code: Some(0) }));
    let RunnerEvent::AgentEvent(started) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(gone_eventually(started["child"].as_i64().unwrap()).await);
}

#[tokio::test]
async fn a_restarted_runner_sees_the_run_alive_and_can_cancel_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = runner(dir.path(), "echo '{\"type\":\"started\"}'; sleep 1000");
    let task_id = TaskId::new();
    let handle = first.launch(spec(task_id, &[])).await.unwrap();
    let mut events = first.watch(&handle).await.unwrap();
    assert!(events.next().await.is_some());

    let restarted = ProcessRunner::new(
        PathBuf::from("/nonexistent"),
        dir.path().join("runs"),
        Duration::from_millis(300),
    );
    assert!(restarted.is_alive(&handle).await.unwrap());
    assert!(matches!(
        restarted.watch(&handle).await,
        Err(RunnerError::UnknownRun(_))
    ));
    restarted.cancel(&handle).await.unwrap();
    assert_eq!(
        collect(events).await,
        vec![RunnerEvent::Exited { code: None }]
    );
    assert!(!restarted.is_alive(&handle).await.unwrap());
}

#[tokio::test]
async fn a_live_pid_running_another_task_is_not_alive_for_this_handle() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "echo '{\"type\":\"started\"}'; sleep 1000");
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = runner.watch(&handle).await.unwrap();
    assert!(events.next().await.is_some());
    let pid = ProcessHandle::parse(&handle).unwrap().pid;

    let other = ProcessHandle {
        pid,
        task_id: TaskId::new(),
    }
    .to_handle();
    assert!(!runner.is_alive(&other).await.unwrap());
    // Cancelling through the wrong handle must not touch the process.
    runner.cancel(&other).await.unwrap();
    assert!(runner.is_alive(&handle).await.unwrap());

    runner.cancel(&handle).await.unwrap();
    collect(events).await;
}

#[tokio::test]
async fn a_run_is_watched_once() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "exit 0");
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let events = runner.watch(&handle).await.unwrap();
    assert!(matches!(
        runner.watch(&handle).await,
        Err(RunnerError::UnknownRun(_))
    ));
    assert_eq!(
        collect(events).await,
        vec![RunnerEvent::Exited { code: Some(0) }]
    );
}

#[tokio::test]
async fn a_missing_agent_binary_is_a_launch_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let runner = ProcessRunner::new(
        dir.path().join("no-such-agent"),
        dir.path().join("runs"),
        Duration::from_millis(300),
    );
    let err = runner.launch(spec(TaskId::new(), &[])).await.unwrap_err();
    assert!(
        matches!(&err, RunnerError::Launch(message) if message.contains("agent_bin")),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_handles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "exit 0");
    let task = TaskId::new();
    for bad in [
        String::new(),
        "job:12:x".to_string(),
        format!("pid:abc:{task}"),
        format!("pid:0:{task}"),
        format!("pid:1:{task}"),
        format!("pid:-5:{task}"),
        "pid:1234:not-a-uuid".to_string(),
    ] {
        let handle = RunHandle(bad.clone());
        assert!(
            matches!(
                runner.is_alive(&handle).await,
                Err(RunnerError::UnknownRun(_))
            ),
            "{bad:?}"
        );
        assert!(runner.cancel(&handle).await.is_err(), "{bad:?}");
    }
}

#[test]
fn handles_round_trip() {
    let handle = ProcessHandle {
        pid: 4242,
        task_id: TaskId::new(),
    };
    assert_eq!(ProcessHandle::parse(&handle.to_handle()).unwrap(), handle);
}

#[test]
fn process_state_is_read_after_the_last_parenthesis() {
    assert_eq!(process_state("12 (bash) S 1 2 3"), Some('S'));
    assert_eq!(process_state("12 (we(i)rd) Z) R 1 2"), Some('R'));
    assert_eq!(process_state("garbage"), None);
}
