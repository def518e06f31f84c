//! The container runner against real Podman (its Docker Engine API, on a socket of the
//! test's own): the agent image's `agent-rs` injected into an environment image that has
//! none, locked down, secrets out of the container's config and gone once the agent has
//! them, status and watch from any runner (re-attach), cancel, list, and failures that
//! must end a launch at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod container_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use container_support::{Engine, podman};
use futures_util::StreamExt;
use orchestrator::TaskId;
use orchestrator::runner::{
    LABEL_ATTEMPT, LABEL_MANAGED_BY, LABEL_TASK_ID, LaunchSpec, MANAGED_BY, Resources, RunHandle,
    RunStatus, Runner, RunnerError, RunnerEvent, run_name,
};
use secrecy::SecretString;
use tokio::net::TcpListener;

const API_KEY: &str = "sk-never-shown-'quoted' $HOME";
const SIGNATURE: &str = "signature-never-shown";

fn spec(task_id: TaskId, env: &[(&str, &str)], secret_env: &[(&str, String)]) -> LaunchSpec {
    let mut plain: BTreeMap<String, String> = BTreeMap::from([
        ("AGENT_TASK_ID".to_string(), task_id.to_string()),
        ("AGENT_TASK".to_string(), "wait".to_string()),
        (
            "OPENAI_BASE_URL".to_string(),
            "http://127.0.0.1:9/v1".to_string(),
        ),
    ]);
    plain.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    LaunchSpec {
        name: run_name(task_id, 1),
        task_id,
        attempt: 1,
        labels: BTreeMap::from([
            (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
            (LABEL_TASK_ID.to_string(), task_id.to_string()),
            (LABEL_ATTEMPT.to_string(), "1".to_string()),
        ]),
        env: plain,
        secret_env: secret_env
            .iter()
            .map(|(k, v)| (k.to_string(), SecretString::from(v.clone())))
            .collect(),
        resources: Resources {
            cpu_millis: Some(500),
            memory_bytes: Some(256 << 20),
        },
        image: None,
        deadline: Duration::from_secs(120),
    }
}

/// A server that accepts connections and never answers: an agent downloading from it
/// stays running. Counts the connections.
async fn silent_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    (address, accepted)
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_is_a_locked_down_container_that_any_runner_follows_and_cancel_removes() {
    let engine = Engine::start();
    let state = tempfile::tempdir().unwrap();
    let runner = engine.runner(state.path());
    let (server, accepted) = silent_server().await;
    let task_id = TaskId::new();
    let spec = spec(
        task_id,
        &[],
        &[
            ("OPENAI_API_KEY", API_KEY.to_string()),
            (
                "AGENT_WORKSPACE_URL",
                format!("http://{server}/blobs/tasks/{task_id}/workspace.tar.gz?sig={SIGNATURE}"),
            ),
            ("AGENT_UPLOAD_URLS", "{}".to_string()),
        ],
    );
    let handle = runner.launch(spec.clone()).await.unwrap();
    assert_eq!(handle, spec.name);
    // A second launch of the name starts nothing.
    assert_eq!(runner.launch(spec.clone()).await.unwrap(), handle);

    // The agent reads its signed URL from the secrets file and reaches the server through
    // the run's egress proxy: it has no network of its own.
    eventually("the agent's download", async || {
        accepted.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Running);

    let inspected = engine.inspect(&handle.0).unwrap();
    let text = inspected.to_string();
    assert!(
        !text.contains("sk-never-shown"),
        "the model key is in the container's config"
    );
    assert!(
        !text.contains(SIGNATURE),
        "a signed URL is in the container's config"
    );
    assert_eq!(inspected["Config"]["User"], "65532:65532");
    let host = &inspected["HostConfig"];
    assert_eq!(host["ReadonlyRootfs"], true, "{host}");
    assert_eq!(host["NetworkMode"], "none", "{host}");
    assert_eq!(host["Memory"], 256 << 20, "{host}");
    assert_eq!(host["NanoCpus"], 500_000_000, "{host}");
    assert!(
        host["SecurityOpt"]
            .to_string()
            .contains("no-new-privileges"),
        "{host}"
    );
    // Every capability the engine gives by default is dropped, none added.
    let dropped = host["CapDrop"].to_string();
    for cap in [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_NET_RAW",
    ] {
        assert!(dropped.contains(cap), "{cap} not dropped: {dropped}");
    }
    assert!(
        host["CapAdd"].as_array().is_none_or(Vec::is_empty),
        "{}",
        host["CapAdd"]
    );
    assert_eq!(
        inspected["Config"]["Labels"][LABEL_TASK_ID],
        task_id.to_string()
    );
    // The injected binary, not one of the environment image's (it has none).
    assert!(
        inspected["Config"]["Image"]
            .as_str()
            .unwrap()
            .ends_with(container_support::ENV_IMAGE)
    );

    let selector = BTreeMap::from([(LABEL_TASK_ID.to_string(), task_id.to_string())]);
    let listed = runner.list(&selector).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].handle, handle);
    assert_eq!(listed[0].task_id(), Some(task_id));
    assert_eq!(listed[0].status, RunStatus::Running);

    // Another runner (a restarted worker) follows the same run; cancel ends it there too.
    let other = engine.runner(state.path());
    let mut stream = other.watch(&handle, 0).await.unwrap();
    runner.cancel(&handle).await.unwrap();
    assert!(!engine.exists(&handle.0), "the container is still there");
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::NotFound);
    let rest: Vec<RunnerEvent> = tokio::time::timeout(Duration::from_secs(30), async {
        let mut rest = Vec::new();
        while let Some(event) = stream.next().await {
            rest.push(event);
        }
        rest
    })
    .await
    .expect("the watch did not end after the cancel");
    assert!(
        !rest
            .iter()
            .any(|event| matches!(event, RunnerEvent::Exited { .. })),
        "a cancelled run's watch reported an exit: {rest:?}"
    );
    assert!(
        !state.path().join(&handle.0).exists(),
        "the run's files stayed"
    );
    assert!(runner.list(&selector).await.unwrap().is_empty());
    // Idempotent.
    runner.cancel(&handle).await.unwrap();
}

/// What a command running beside the agent (its user, its container) finds of the run's
/// secrets: `LEAK:` lines for files holding any of them, `WROTE` if it could write to the
/// secrets folder, then `hunt-over`.
const HUNT: &str = r#"
cat /run/agent-rs-secrets/env /run/agent-rs-secrets.env /proc/1/environ 2>&1
ls -la /run/agent-rs-secrets 2>&1
touch /run/agent-rs-secrets/x 2>/dev/null && echo WROTE
find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name '*secret*' -print 2>&1
find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type f -print 2>/dev/null |
  while read -r f; do grep -q -F -e never-shown "$f" 2>/dev/null && echo "LEAK:$f"; done
echo hunt-over
"#;

/// Once the agent runs (it reached its signed URL, read from the secrets file), no
/// command beside it can read the secrets: not at the mount, nowhere on its file
/// system, not in the agent's `/proc`; the folder on the host is closed. Started again
/// by hand, the container has no secrets to read and ends before the agent starts.
#[tokio::test(flavor = "multi_thread")]
async fn once_the_agent_runs_its_secrets_are_nowhere_and_a_second_start_fails_closed() {
    use std::os::unix::fs::PermissionsExt;
    let engine = Engine::start();
    let state = tempfile::tempdir().unwrap();
    let runner = engine.runner(state.path());
    let (server, accepted) = silent_server().await;
    let task_id = TaskId::new();
    let spec = spec(
        task_id,
        &[],
        &[
            ("OPENAI_API_KEY", API_KEY.to_string()),
            (
                "AGENT_WORKSPACE_URL",
                format!("http://{server}/blobs/tasks/{task_id}/workspace.tar.gz?sig={SIGNATURE}"),
            ),
            ("AGENT_UPLOAD_URLS", "{}".to_string()),
        ],
    );
    let handle = runner.launch(spec).await.unwrap();
    eventually("the agent's download", async || {
        accepted.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;
    let secrets = state.path().join(&handle.0).join("secrets");
    assert!(!secrets.join("env").exists(), "the secrets file stayed");
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Running);
    let mode = std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "the secrets folder stayed open: {mode:o}");

    let hunt = podman()
        .args(["exec", "--user", "65532:65532", &handle.0, "sh", "-c", HUNT])
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&hunt.stdout);
    container_support::assert_secrets_hunt_found_nothing(&found, &["never-shown"]);

    // Killed, then started again by hand (the runner never does): the wrapper finds no
    // secrets and ends with 2 before the agent runs (no new download).
    assert!(
        podman()
            .args(["kill", &handle.0])
            .output()
            .unwrap()
            .status
            .success()
    );
    let waited = podman().args(["wait", &handle.0]).output().unwrap();
    assert!(waited.status.success(), "{waited:?}");
    let downloads = accepted.load(std::sync::atomic::Ordering::SeqCst);
    let started = podman().args(["start", &handle.0]).output().unwrap();
    assert!(started.status.success(), "{started:?}");
    let waited = podman().args(["wait", &handle.0]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&waited.stdout).trim(),
        "2",
        "{waited:?}"
    );
    let logs = podman().args(["logs", &handle.0]).output().unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    assert!(
        logs.contains("secrets") && logs.contains("are gone"),
        "{logs}"
    );
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        downloads,
        "the agent ran again"
    );
    assert!(matches!(
        runner.status(&handle).await.unwrap(),
        RunStatus::Exited { code: Some(2), .. }
    ));
    assert!(!secrets.exists(), "the secrets folder outlived the run");
    runner.cancel(&handle).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_ends_reports_its_exit_code_to_status_and_every_watch() {
    let engine = Engine::start();
    let state = tempfile::tempdir().unwrap();
    let runner = engine.runner(state.path());
    let task_id = TaskId::new();
    // Not JSON: the agent refuses its settings and exits with 2 (bad input).
    let spec = spec(
        task_id,
        &[],
        &[
            (
                "AGENT_WORKSPACE_URL",
                "http://127.0.0.1:9/workspace.tar.gz".to_string(),
            ),
            ("AGENT_UPLOAD_URLS", "not json".to_string()),
        ],
    );
    let handle = runner.launch(spec).await.unwrap();
    let events: Vec<RunnerEvent> = tokio::time::timeout(
        Duration::from_secs(60),
        runner.watch(&handle, 0).await.unwrap().collect(),
    )
    .await
    .unwrap();
    assert_eq!(
        events.last(),
        Some(&RunnerEvent::Exited {
            code: Some(2),
            reason: "exited with code 2".to_string()
        }),
        "{events:?}"
    );
    assert!(matches!(
        runner.status(&handle).await.unwrap(),
        RunStatus::Exited { code: Some(2), .. }
    ));
    // A watch that starts after the end replays and ends the same way.
    let again: Vec<RunnerEvent> = runner.watch(&handle, 0).await.unwrap().collect().await;
    assert_eq!(again, events);
    // Over: its secrets folder is gone from the host.
    assert!(!state.path().join(&handle.0).join("secrets").exists());
    runner.cancel(&handle).await.unwrap();
    assert!(!engine.exists(&handle.0));
}

/// A run that ends and is removed takes the agent volumes older agent images left with
/// it; one a container still uses stays, and so do volumes that are not the service's.
/// A volume swept from under a runner that had filled it is filled again at its next
/// launch.
#[tokio::test(flavor = "multi_thread")]
async fn removing_a_run_removes_old_agent_volumes_nothing_uses() {
    use container_support::ENV_IMAGE;
    use orchestrator::runner::container::VOLUME_PREFIX;
    let engine = Engine::start();
    let state = tempfile::tempdir().unwrap();
    let runner = engine.runner(state.path());
    let unique = || {
        format!(
            "{VOLUME_PREFIX}{:012x}",
            fastrand::u64(..) & 0xffff_ffff_ffff
        )
    };
    let label = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
    let (stale, in_use, foreign) = (unique(), unique(), unique());
    for (volume, labelled) in [(&stale, true), (&in_use, true), (&foreign, false)] {
        let mut create = podman();
        create.args(["volume", "create"]);
        if labelled {
            create.args(["--label", &label]);
        }
        assert!(create.arg(volume).output().unwrap().status.success());
    }
    let user = format!("volume-user-{}", &in_use[VOLUME_PREFIX.len()..]);
    let created = podman()
        .args(["create", "--name", &user, "-v"])
        .arg(format!("{in_use}:/data"))
        .args([ENV_IMAGE, "true"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");

    // A run that ends at once (its settings are refused), then is removed.
    let ends = |task_id| {
        spec(
            task_id,
            &[],
            &[
                (
                    "AGENT_WORKSPACE_URL",
                    "http://127.0.0.1:9/w.tar.gz".to_string(),
                ),
                ("AGENT_UPLOAD_URLS", "not json".to_string()),
            ],
        )
    };
    let run_to_end = async |runner: &orchestrator::runner::ContainerRunner, task_id| {
        let handle = runner.launch(ends(task_id)).await.unwrap();
        let events: Vec<RunnerEvent> = tokio::time::timeout(
            Duration::from_secs(60),
            runner.watch(&handle, 0).await.unwrap().collect(),
        )
        .await
        .unwrap();
        runner.cancel(&handle).await.unwrap();
        events.last().cloned()
    };
    let exited = Some(RunnerEvent::Exited {
        code: Some(2),
        reason: "exited with code 2".to_string(),
    });
    assert_eq!(run_to_end(&runner, TaskId::new()).await, exited);
    let left = engine.volumes(VOLUME_PREFIX);
    assert!(!left.contains(&stale), "the old volume stayed: {left:?}");
    assert!(left.contains(&in_use), "a volume in use was removed");
    assert!(left.contains(&foreign), "a volume not ours was removed");
    let current: Vec<&String> = left
        .iter()
        .filter(|name| ![&in_use, &foreign].contains(name))
        .collect();
    assert_eq!(current.len(), 1, "the agent image's own volume: {left:?}");

    // Swept by someone else (a worker on another agent image): filled again, and the
    // run gets a whole binary (it exits as before, not with "not found").
    let current = current[0].clone();
    let removed = podman().args(["volume", "rm", &current]).output().unwrap();
    assert!(
        removed.status.success(),
        "{removed:?}, containers: {}",
        engine.containers()
    );
    assert_eq!(run_to_end(&runner, TaskId::new()).await, exited);
    assert!(engine.volumes(VOLUME_PREFIX).contains(&current));

    // The container gone, its volume goes with the next sweep; the foreign one never.
    assert!(
        podman()
            .args(["rm", "-f", &user])
            .output()
            .unwrap()
            .status
            .success()
    );
    let swept = runner.sweep_agent_volumes().await.unwrap();
    assert!(swept.contains(&in_use), "{swept:?}");
    assert!(!swept.contains(&foreign), "{swept:?}");
    let removed = podman().args(["volume", "rm", &foreign]).output().unwrap();
    assert!(removed.status.success(), "{removed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_is_not_there_fails_the_launch_at_once_and_leaves_nothing() {
    let engine = Engine::start();
    let state = tempfile::tempdir().unwrap();
    let runner = engine.runner(state.path());
    let mut spec = spec(TaskId::new(), &[], &[]);
    spec.image = Some("localhost/agent-rs/no-such-image:latest".to_string());
    let started = Instant::now();
    let err = runner.launch(spec.clone()).await.unwrap_err();
    assert!(matches!(err, RunnerError::Launch(_)), "{err:?}");
    assert!(err.to_string().contains("no-such-image"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!engine.exists(&spec.name.0));
    assert_eq!(
        runner.status(&spec.name).await.unwrap(),
        RunStatus::NotFound
    );

    // A misconfigured agent image is named too.
    let mut settings = engine.settings(state.path());
    settings.agent_image = "localhost/agent-rs/no-such-agent:latest".to_string();
    let runner =
        orchestrator::runner::ContainerRunner::new(settings, state.path().to_path_buf()).unwrap();
    let err = runner.launch(spec).await.unwrap_err();
    assert!(err.to_string().contains("no-such-agent"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_are_not_run_names_are_refused_before_the_engine_is_asked() {
    let engine = Engine::start();
    let state = tempfile::tempdir().unwrap();
    let runner = engine.runner(state.path());
    for name in ["../etc", "some-other-container", "agent-X"] {
        let handle = RunHandle(name.to_string());
        assert!(
            matches!(
                runner.status(&handle).await,
                Err(RunnerError::UnknownRun(_))
            ),
            "{name}"
        );
        assert!(matches!(
            runner.cancel(&handle).await,
            Err(RunnerError::UnknownRun(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_is_not_there_is_refused_or_a_transient_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("engine.sock");
    let settings = |socket: &std::path::Path| orchestrator::runner::ContainerSettings {
        socket: Some(format!("unix://{}", socket.display())),
        ..Default::default()
    };
    // No socket at all: the runner is refused, naming it.
    let err = orchestrator::runner::ContainerRunner::new(settings(&socket), dir.path().into())
        .unwrap_err();
    assert!(err.to_string().contains("engine.sock"), "{err}");
    // A socket nobody answers on (an engine that stopped): every call may be retried.
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    drop(listener);
    let runner =
        orchestrator::runner::ContainerRunner::new(settings(&socket), dir.path().into()).unwrap();
    let err = runner.ping().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let err = runner
        .status(&run_name(TaskId::new(), 1))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}
