use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::SecretString;

use super::procs::process_state;
use super::*;
use crate::runner::{LABEL_TASK_ID, Resources, run_name};

/// A fake `agent-rs`: a bash script run as `{script} job`.
pub(super) fn fake_agent(dir: &Path, body: &str) -> PathBuf {
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

/// Another runner over the same runs folder: a restarted server.
fn restarted(dir: &Path) -> ProcessRunner {
    ProcessRunner::new(
        PathBuf::from("/nonexistent"),
        dir.join("runs"),
        Duration::from_millis(300),
    )
}

pub(super) fn spec(task_id: TaskId, env: &[(&str, &str)]) -> LaunchSpec {
    LaunchSpec {
        name: run_name(task_id, 1),
        task_id,
        attempt: 1,
        labels: BTreeMap::from([
            (
                crate::runner::LABEL_MANAGED_BY.to_string(),
                "test".to_string(),
            ),
            (LABEL_TASK_ID.to_string(), task_id.to_string()),
        ]),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secret_env: BTreeMap::new(),
        resources: Resources::default(),
        image: None,
        deadline: Duration::from_secs(600),
    }
}

/// Every item of a stream, failing the test if it does not end in time.
pub(super) async fn collect(stream: BoxStream<'static, RunnerEvent>) -> Vec<RunnerEvent> {
    tokio::time::timeout(Duration::from_secs(30), stream.collect())
        .await
        .expect("the event stream never ended")
}

fn agent_event(value: serde_json::Value) -> RunnerEvent {
    RunnerEvent::AgentEvent(value)
}

fn exited(code: i32) -> RunnerEvent {
    RunnerEvent::Exited {
        code: Some(code),
        reason: format!("the agent exited with code {code}"),
    }
}

async fn next_event(events: &mut BoxStream<'static, RunnerEvent>) -> serde_json::Value {
    match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
        Ok(Some(RunnerEvent::AgentEvent(value))) => value,
        other => panic!("expected an agent event, got {other:?}"),
    }
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

async fn status_eventually(runner: &ProcessRunner, handle: &RunHandle, want: &RunStatus) -> bool {
    for _ in 0..500 {
        if &runner.status(handle).await.unwrap() == want {
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
    let events = collect(runner.watch(&handle, 0).await.unwrap()).await;
    assert_eq!(
        events,
        vec![
            agent_event(serde_json::json!({"type":"task_started","n":1})),
            agent_event(serde_json::json!({"type":"task_finished"})),
            exited(3),
        ]
    );
    assert_eq!(
        runner.status(&handle).await.unwrap(),
        RunStatus::Exited {
            code: Some(3),
            reason: "the agent exited with code 3".into()
        }
    );
}

#[tokio::test]
async fn agent_sees_only_the_base_env_and_the_spec_plain_and_secret() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"printf '{"names":"%s","task":"%s","key":"%s"}\n' "$(compgen -e | tr '\n' ' ')" "$AGENT_TASK" "$OPENAI_API_KEY""#,
    );
    let task_id = TaskId::new();
    let mut spec = spec(task_id, &[("AGENT_TASK", "fix the bug")]);
    spec.secret_env
        .insert("OPENAI_API_KEY".into(), SecretString::from("sk-test-key"));
    let handle = runner.launch(spec).await.unwrap();
    let events = collect(runner.watch(&handle, 0).await.unwrap()).await;
    let RunnerEvent::AgentEvent(event) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(event["task"], "fix the bug");
    assert_eq!(event["key"], "sk-test-key");
    let names: Vec<&str> = event["names"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    for wanted in ["PATH", "AGENT_TASK_ID", "AGENT_RUN_NAME"] {
        assert!(names.contains(&wanted), "{wanted} missing: {names:?}");
    }
    // Cargo runs tests with CARGO_MANIFEST_DIR set; the agent must not inherit it.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    assert!(!names.contains(&"CARGO_MANIFEST_DIR"), "{names:?}");
    assert_eq!(events.last(), Some(&exited(0)));
}

#[tokio::test]
async fn secret_values_are_never_written_to_the_runs_folder() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "sleep 0.2; exit 0");
    let mut spec = spec(TaskId::new(), &[]);
    spec.secret_env.insert(
        "AGENT_UPLOAD_URLS".into(),
        SecretString::from("https://blobs/x?sig=very-secret-signature"),
    );
    let handle = runner.launch(spec).await.unwrap();
    collect(runner.watch(&handle, 0).await.unwrap()).await;
    for entry in walkdir::WalkDir::new(dir.path().join("runs")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(
                !text.contains("very-secret-signature"),
                "{} holds a secret",
                entry.path().display()
            );
        }
    }
}

#[tokio::test]
async fn stderr_goes_to_the_task_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "echo 'agent diagnostics' >&2; exit 0");
    let task_id = TaskId::new();
    let handle = runner.launch(spec(task_id, &[])).await.unwrap();
    collect(runner.watch(&handle, 0).await.unwrap()).await;
    let log = std::fs::read_to_string(runner.log_path(task_id)).unwrap();
    assert_eq!(log, "agent diagnostics\n");
}

#[tokio::test]
async fn a_second_launch_of_one_name_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("starts");
    let runner = runner(
        dir.path(),
        &format!("echo started >> '{}'; sleep 0.3; exit 0", count.display()),
    );
    let spec = spec(TaskId::new(), &[]);
    let first = runner.launch(spec.clone()).await.unwrap();
    let second = runner.launch(spec).await.unwrap();
    assert_eq!(first, second);
    collect(runner.watch(&first, 0).await.unwrap()).await;
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "started\n");
}

#[tokio::test]
async fn a_run_outlives_its_runner_and_another_runner_re_attaches() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let first = runner(
        dir.path(),
        &format!(
            "echo '{{\"type\":\"one\"}}'\nwhile [ ! -e '{}' ]; do sleep 0.02; done\necho '{{\"type\":\"two\"}}'\nexit 4",
            go.display()
        ),
    );
    let handle = first.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = first.watch(&handle, 0).await.unwrap();
    assert_eq!(next_event(&mut events).await["type"], "one");
    drop(events);
    drop(first);

    let second = restarted(dir.path());
    assert_eq!(second.status(&handle).await.unwrap(), RunStatus::Running);
    let replay = second.watch(&handle, 0).await.unwrap();
    let resumed = second.watch(&handle, 1).await.unwrap();
    std::fs::write(&go, "").unwrap();
    let all = collect(replay).await;
    assert_eq!(
        all,
        vec![
            agent_event(serde_json::json!({"type":"one"})),
            agent_event(serde_json::json!({"type":"two"})),
            exited(4),
        ]
    );
    assert_eq!(collect(resumed).await, all[1..]);
}

#[tokio::test]
async fn detach_ends_this_processs_watches_and_leaves_the_run_going() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "echo '{\"type\":\"started\"}'; sleep 1000");
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = runner.watch(&handle, 0).await.unwrap();
    next_event(&mut events).await;
    runner.detach(&handle).await.unwrap();
    assert_eq!(
        collect(events).await,
        vec![],
        "a detached stream ends without an exit"
    );
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Running);
    runner.cancel(&handle).await.unwrap();
}

#[tokio::test]
async fn cancel_kills_the_agent_and_its_children_and_removes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"sleep 1000 &
echo "{\"type\":\"started\",\"child\":$!}"
wait"#,
    );
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = runner.watch(&handle, 0).await.unwrap();
    let child = next_event(&mut events).await["child"].as_i64().unwrap();
    assert!(pid_running(child));
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Running);

    runner.cancel(&handle).await.unwrap();

    let rest = collect(events).await;
    assert!(
        rest.iter()
            .all(|event| matches!(event, RunnerEvent::Exited { code: None, .. })),
        "{rest:?}"
    );
    assert!(
        gone_eventually(child).await,
        "the agent's child survived the cancel"
    );
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::NotFound);
    // Idempotent: cancelling a removed run is fine.
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
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = runner.watch(&handle, 0).await.unwrap();
    let child = next_event(&mut events).await["child"].as_i64().unwrap();
    assert!(pid_running(child));

    runner.cancel(&handle).await.unwrap();

    assert!(
        gone_eventually(child).await,
        "a command in its own process group survived the cancel"
    );
}

#[tokio::test]
async fn an_agent_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        r#"trap '' TERM
echo "{\"type\":\"started\",\"pid\":$$}"
while true; do sleep 0.05; done"#,
    );
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = runner.watch(&handle, 0).await.unwrap();
    let pid = next_event(&mut events).await["pid"].as_i64().unwrap();
    runner.cancel(&handle).await.unwrap();
    assert!(gone_eventually(pid).await, "the agent outlived the grace");
    collect(events).await;
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
    let events = collect(runner.watch(&handle, 0).await.unwrap()).await;
    assert_eq!(events.last(), Some(&exited(0)));
    let RunnerEvent::AgentEvent(started) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(gone_eventually(started["child"].as_i64().unwrap()).await);
}

#[tokio::test]
async fn a_run_whose_processes_all_died_without_an_exit_record_is_not_found() {
    // A host crash: the supervisor and the agent die together.
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(
        dir.path(),
        "echo \"{\\\"type\\\":\\\"started\\\"}\"; sleep 1000",
    );
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let mut events = runner.watch(&handle, 0).await.unwrap();
    next_event(&mut events).await;
    super::procs::kill_run_processes(&handle.0).await;
    assert!(status_eventually(&runner, &handle, &RunStatus::NotFound).await);
    assert_eq!(
        collect(events).await,
        vec![],
        "a lost run's stream ends without an exit"
    );
}

#[tokio::test]
async fn list_finds_runs_by_label() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "exit 0");
    let (one, two) = (TaskId::new(), TaskId::new());
    let first = runner.launch(spec(one, &[])).await.unwrap();
    runner.launch(spec(two, &[])).await.unwrap();
    let everything = BTreeMap::from([(
        crate::runner::LABEL_MANAGED_BY.to_string(),
        "test".to_string(),
    )]);
    assert_eq!(runner.list(&everything).await.unwrap().len(), 2);
    let only_one = BTreeMap::from([(LABEL_TASK_ID.to_string(), one.to_string())]);
    let found = runner.list(&only_one).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].handle, first);
    assert_eq!(found[0].task_id(), Some(one));
}

#[tokio::test]
async fn the_memory_limit_becomes_the_agents_address_space_limit() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), r#"echo "{\"limit\":\"$(ulimit -v)\"}""#);
    let mut spec = spec(TaskId::new(), &[]);
    spec.resources.memory_bytes = Some(512 * 1024 * 1024);
    let handle = runner.launch(spec).await.unwrap();
    let events = collect(runner.watch(&handle, 0).await.unwrap()).await;
    assert_eq!(
        events[0],
        agent_event(serde_json::json!({"limit": "524288"}))
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
    let spec = spec(TaskId::new(), &[]);
    let name = spec.name.clone();
    let err = runner.launch(spec).await.unwrap_err();
    assert!(
        matches!(&err, RunnerError::Launch(message) if message.contains("agent_bin")),
        "{err}"
    );
    assert_eq!(runner.status(&name).await.unwrap(), RunStatus::NotFound);
}

#[tokio::test]
async fn names_that_are_not_run_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner(dir.path(), "exit 0");
    for bad in ["", "pid:12:x", "../runs", "agent-../../x", "agent-UPPER"] {
        let handle = RunHandle(bad.to_string());
        assert!(
            matches!(
                runner.status(&handle).await,
                Err(RunnerError::UnknownRun(_))
            ),
            "{bad:?}"
        );
        assert!(runner.cancel(&handle).await.is_err(), "{bad:?}");
        assert!(runner.watch(&handle, 0).await.is_err(), "{bad:?}");
    }
}
