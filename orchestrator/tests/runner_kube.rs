//! The Kubernetes Job runner against a fake API server (no cluster runs here): each
//! scenario plays the cluster's part (pods appear, run, print, end; Job conditions) and
//! checks the requests the runner sent, field by field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use orchestrator::TaskId;
use orchestrator::runner::kubernetes::API_CALLS;
use orchestrator::runner::{
    KubeRunner, KubeSettings, LABEL_ATTEMPT, LABEL_MANAGED_BY, LABEL_TASK_ID, LaunchSpec,
    MANAGED_BY, Resources, RunHandle, RunStatus, Runner, RunnerError, RunnerEvent, run_name,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::fake_kube::{self as kube_support, *};

const API_KEY: &str = "sk-test-model-key-123";
const WORKSPACE_URL: &str = "https://blobs.example/ws.tar.gz?X-Amz-Signature=deadbeef";

fn settings() -> KubeSettings {
    KubeSettings {
        namespace: NAMESPACE.to_string(),
        agent_image: "registry.example/agent-rs/agent:1.0".to_string(),
        environment_image: "registry.example/env/python:3.12".to_string(),
        stuck_after_secs: 1,
        ..KubeSettings::default()
    }
}

fn new_runner(server: &FakeApiServer) -> KubeRunner {
    KubeRunner::new(server.client(), settings())
}

fn spec(task_id: TaskId) -> LaunchSpec {
    LaunchSpec {
        name: run_name(task_id, 1),
        task_id,
        attempt: 1,
        labels: BTreeMap::from([
            (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
            (LABEL_TASK_ID.to_string(), task_id.to_string()),
            (LABEL_ATTEMPT.to_string(), "1".to_string()),
        ]),
        env: BTreeMap::from([
            ("AGENT_TASK_ID".to_string(), task_id.to_string()),
            ("AGENT_TASK".to_string(), "fix the failing test".to_string()),
            ("AGENT_TIMEOUT_SECS".to_string(), "600".to_string()),
        ]),
        secret_env: BTreeMap::from([
            ("OPENAI_API_KEY".to_string(), SecretString::from(API_KEY)),
            (
                "AGENT_WORKSPACE_URL".to_string(),
                SecretString::from(WORKSPACE_URL),
            ),
        ]),
        resources: Resources {
            cpu_millis: Some(500),
            memory_bytes: Some(1 << 30),
        },
        image: None,
        deadline: Duration::from_secs(720),
    }
}

/// Everything a watch yields until it ends (at most 10 s).
async fn collect(stream: BoxStream<'static, RunnerEvent>) -> Vec<RunnerEvent> {
    tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("the watch ended")
}

fn event(n: u64) -> String {
    json!({"type": "tool_call", "n": n}).to_string()
}

fn events(range: std::ops::RangeInclusive<u64>) -> Vec<RunnerEvent> {
    range
        .map(|n| RunnerEvent::AgentEvent(serde_json::from_str(&event(n)).unwrap()))
        .collect()
}

fn container<'a>(job: &'a Value, list: &str, name: &str) -> &'a Value {
    job["spec"]["template"]["spec"][list]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {list} `{name}` in {job}"))
}

fn env_of(container: &Value) -> BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|var| (var["name"].as_str().unwrap().to_string(), var.clone()))
        .collect()
}

fn assert_locked_down(container: &Value) {
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false, "{container}");
    assert_eq!(security["readOnlyRootFilesystem"], true, "{container}");
    assert_eq!(security["runAsNonRoot"], true, "{container}");
    assert_eq!(
        security["capabilities"]["drop"],
        json!(["ALL"]),
        "{container}"
    );
    assert!(security["capabilities"]["add"].is_null(), "{container}");
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
}

/// Launch: one Job built as the design requires, one Secret owned by it, no secret
/// value in the Job.
async fn launch_builds_a_locked_down_job_and_an_owned_secret() -> FakeApiServer {
    let server = FakeApiServer::new();
    let task_id = TaskId::new();
    let handle = new_runner(&server).launch(spec(task_id)).await.unwrap();
    assert_eq!(handle, run_name(task_id, 1));
    let name = handle.0.as_str();

    let creates = server.calls_of("create", "jobs");
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].path,
        format!("/apis/batch/v1/namespaces/{NAMESPACE}/jobs")
    );
    let job = creates[0].body.clone().unwrap();
    assert!(
        !job.to_string().contains(API_KEY),
        "the key is inline: {job}"
    );
    assert!(
        !job.to_string().contains("deadbeef"),
        "the signed URL is inline: {job}"
    );
    assert_eq!(job["metadata"]["name"], name);
    let labels = &job["metadata"]["labels"];
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY);
    assert_eq!(labels[LABEL_TASK_ID], task_id.to_string());
    assert_eq!(labels[LABEL_ATTEMPT], "1");
    assert_eq!(labels["agent-rs/run"], name);
    let job_spec = &job["spec"];
    assert_eq!(job_spec["backoffLimit"], 0);
    assert_eq!(job_spec["activeDeadlineSeconds"], 720);
    assert_eq!(job_spec["ttlSecondsAfterFinished"], 3600);
    assert_eq!(
        job_spec["template"]["metadata"]["labels"]["agent-rs/run"],
        name
    );
    let pod = &job_spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["enableServiceLinks"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );

    let install = container(&job, "initContainers", "install-agent");
    assert_eq!(install["image"], "registry.example/agent-rs/agent:1.0");
    assert_eq!(
        install["command"],
        json!([
            "/agent-rs",
            "install",
            "/opt/agent-rs",
            "--with",
            "/etc/ssl/certs/ca-certificates.crt"
        ])
    );
    assert_locked_down(install);
    let agent = container(&job, "containers", "agent");
    assert_eq!(agent["image"], "registry.example/env/python:3.12");
    assert_eq!(agent["command"], json!(["/opt/agent-rs/agent-rs", "job"]));
    assert_locked_down(agent);
    let mounts = agent["volumeMounts"].as_array().unwrap();
    let bin = mounts
        .iter()
        .find(|m| m["mountPath"] == "/opt/agent-rs")
        .unwrap();
    assert_eq!(
        bin["readOnly"], true,
        "the agent must not rewrite its own binary"
    );
    assert_eq!(
        agent["resources"]["limits"],
        json!({"cpu": "500m", "memory": "1073741824"})
    );
    assert_eq!(agent["resources"]["requests"], agent["resources"]["limits"]);
    let env = env_of(agent);
    assert_eq!(env["AGENT_TASK"]["value"], "fix the failing test");
    assert_eq!(env["AGENT_TASK_ID"]["value"], task_id.to_string());
    for secret in ["OPENAI_API_KEY", "AGENT_WORKSPACE_URL"] {
        assert!(env[secret]["value"].is_null(), "{secret} is inline");
        assert_eq!(
            env[secret]["valueFrom"]["secretKeyRef"],
            json!({"name": name, "key": secret, "optional": false})
        );
    }

    let secrets = server.calls_of("create", "secrets");
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        secrets[0].path,
        format!("/api/v1/namespaces/{NAMESPACE}/secrets")
    );
    let secret = secrets[0].body.clone().unwrap();
    assert_eq!(secret["metadata"]["name"], name);
    assert_eq!(
        secret["metadata"]["labels"][LABEL_TASK_ID],
        task_id.to_string()
    );
    let uid = server.object(Kind::Job, name).unwrap()["metadata"]["uid"].clone();
    assert_eq!(
        secret["metadata"]["ownerReferences"],
        json!([{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": true}])
    );
    let key = base64_decode(secret["data"]["OPENAI_API_KEY"].as_str().unwrap());
    assert_eq!(key, API_KEY);
    assert_eq!(server.calls().len(), 2, "{:?}", server.verbs());
    server
}

fn base64_decode(text: &str) -> String {
    use base64::Engine;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn launch_builds_a_locked_down_job_and_an_owned_secret_test() {
    launch_builds_a_locked_down_job_and_an_owned_secret().await;
}

/// The task's own environment image replaces the default.
#[tokio::test]
async fn a_task_image_replaces_the_default_environment_image() {
    let server = FakeApiServer::new();
    let mut spec = spec(TaskId::new());
    spec.image = Some("registry.example/env/node:22".to_string());
    new_runner(&server).launch(spec).await.unwrap();
    let job = server.calls_of("create", "jobs")[0].body.clone().unwrap();
    assert_eq!(
        container(&job, "containers", "agent")["image"],
        "registry.example/env/node:22"
    );
}

/// Launching a name again starts nothing new, and a Secret the first launch failed to
/// create is created by the second.
async fn launch_again_finishes_what_the_first_began() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let spec = spec(TaskId::new());
    let name = spec.name.0.clone();
    server.fail_next("create", "secrets", 503);
    let err = runner.launch(spec.clone()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!err.to_string().contains(API_KEY), "{err}");
    assert_eq!(server.names(Kind::Secret), Vec::<String>::new());
    let first_uid = server.object(Kind::Job, &name).unwrap()["metadata"]["uid"].clone();

    assert_eq!(runner.launch(spec.clone()).await.unwrap().0, name);
    assert_eq!(runner.launch(spec).await.unwrap().0, name);
    assert_eq!(server.names(Kind::Job), vec![name.clone()]);
    assert_eq!(server.names(Kind::Secret), vec![name.clone()]);
    assert_eq!(
        server.object(Kind::Job, &name).unwrap()["metadata"]["uid"],
        first_uid
    );
    let secret = server.object(Kind::Secret, &name).unwrap();
    assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], first_uid);
    assert_eq!(server.calls_of("create", "jobs").len(), 3);
    assert_eq!(
        server.calls_of("get", "jobs").len(),
        2,
        "409 answered by reading the Job"
    );
    server
}

#[tokio::test]
async fn launch_again_finishes_what_the_first_began_test() {
    launch_again_finishes_what_the_first_began().await;
}

/// A Job the API server refuses is a launch error naming it.
#[tokio::test]
async fn a_refused_job_is_a_launch_error() {
    let server = FakeApiServer::new();
    server.fail_next("create", "jobs", 422);
    let err = new_runner(&server)
        .launch(spec(TaskId::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, RunnerError::Launch(_)), "{err:?}");
    assert!(!err.is_transient());
    assert!(server.calls_of("create", "secrets").is_empty());
}

/// Success: the pod runs, prints events (and a line that is not one), ends with 0; the
/// watch yields the events in order and `Exited(0)`.
async fn success_streams_events_then_exit() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    let pod = pod_name(run);
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Pending);
    let stream = runner.watch(&handle, 0).await.unwrap();
    server.put_pod(&kube_support::pod(
        run,
        ago(2),
        waiting("PodInitializing", ""),
    ));
    server.put_pod(&kube_support::pod(run, ago(2), running()));
    server.print(&pod, &event(1));
    server.print(&pod, "agent-rs: a diagnostic line, not an event");
    server.print(&pod, &event(2));
    let logs = server.wait_for_call("get", "pods/log", 1).await;
    assert_eq!(
        logs[0].path,
        format!("/api/v1/namespaces/{NAMESPACE}/pods/{pod}/log")
    );
    assert_eq!(
        logs[0].query.get("container").map(String::as_str),
        Some("agent")
    );
    assert_eq!(
        logs[0].query.get("follow").map(String::as_str),
        Some("true")
    );
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Running);
    server.print(&pod, &event(3));
    server.close_log(&pod);
    server.put_pod(&kube_support::pod(run, ago(2), terminated(0, "Completed")));
    server.set_job_condition(
        run,
        "Complete",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
    );
    let mut expected = events(1..=3);
    expected.push(RunnerEvent::Exited {
        code: Some(0),
        reason: "completed".to_string(),
    });
    assert_eq!(collect(stream).await, expected);
    assert_eq!(
        runner.status(&handle).await.unwrap(),
        RunStatus::Exited {
            code: Some(0),
            reason: "completed".to_string()
        }
    );
    // Watched from the cluster: the Job by name, the pod by the run label.
    let job_watch = &server.calls_of("watch", "jobs")[0];
    assert_eq!(
        job_watch.query["fieldSelector"],
        format!("metadata.name={run}")
    );
    let pod_watch = &server.calls_of("watch", "pods")[0];
    assert_eq!(
        pod_watch.query["labelSelector"],
        format!("agent-rs/run={run}")
    );
    server
}

#[tokio::test]
async fn success_streams_events_then_exit_test() {
    success_streams_events_then_exit().await;
}

/// A failed Job ends the wait, with the agent's exit code and the Job's reason.
async fn failed_job_ends_the_wait() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    let pod = pod_name(run);
    server.put_pod(&kube_support::pod(run, ago(2), running()));
    let stream = runner.watch(&handle, 0).await.unwrap();
    server.print(&pod, &event(1));
    server.close_log(&pod);
    server.set_job_condition(
        run,
        "Failed",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );
    server.put_pod(&kube_support::pod(run, ago(2), terminated(4, "Error")));
    let got = collect(stream).await;
    assert_eq!(got[..1], events(1..=1)[..]);
    match &got[1..] {
        [
            RunnerEvent::Exited {
                code: Some(4),
                reason,
            },
        ] => {
            assert!(reason.contains("BackoffLimitExceeded"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    server
}

#[tokio::test]
async fn failed_job_ends_the_wait_test() {
    failed_job_ends_the_wait().await;
}

/// Past `activeDeadlineSeconds` the Job controller fails the Job and kills the pod: the
/// watch ends with the deadline as reason and no exit code.
async fn deadline_exceeded_ends_the_run() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    let pod = pod_name(run);
    server.put_pod(&kube_support::pod(run, ago(800), running()));
    let stream = runner.watch(&handle, 0).await.unwrap();
    server.print(&pod, &event(1));
    server.wait_for_call("get", "pods/log", 1).await;
    server.set_job_condition(
        run,
        "Failed",
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    );
    server.close_log(&pod);
    server.remove(Kind::Pod, &pod);
    let got = collect(stream).await;
    assert_eq!(got[..1], events(1..=1)[..]);
    match &got[1..] {
        [RunnerEvent::Exited { code: None, reason }] => {
            assert!(reason.contains("DeadlineExceeded"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    server
}

#[tokio::test]
async fn deadline_exceeded_ends_the_run_test() {
    deadline_exceeded_ends_the_run().await;
}

/// A pod that cannot pull its image fails the run once past the limit, with the
/// kubelet's reason; the Job is deleted (in the background) so nothing waits forever.
async fn image_pull_error_fails_the_run_past_the_limit() -> FakeApiServer {
    let server = FakeApiServer::new();
    // API times have whole seconds: a limit of 2 s is at least 1 s from "now".
    let settings = KubeSettings {
        stuck_after_secs: 2,
        ..settings()
    };
    let runner = KubeRunner::new(server.client(), settings);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    let stream = runner.watch(&handle, 0).await.unwrap();
    // Stuck since now: the limit has not passed yet.
    let message = "Back-off pulling image \"registry.example/env/python:3.12\"";
    server.put_pod(&kube_support::pod(
        run,
        ago(0),
        waiting("ImagePullBackOff", message),
    ));
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Pending);
    let started = std::time::Instant::now();
    let got = collect(stream).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match got.as_slice() {
        [RunnerEvent::Exited { code: None, reason }] => {
            assert!(
                reason.contains("ImagePullBackOff") && reason.contains(message),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let deletes = server.calls_of("delete", "jobs");
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].body.as_ref().unwrap()["propagationPolicy"],
        "Background"
    );
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::NotFound);
    assert!(
        server.names(Kind::Secret).is_empty(),
        "the Secret goes with its Job"
    );
    server
}

#[tokio::test]
async fn image_pull_error_fails_the_run_past_the_limit_test() {
    image_pull_error_fails_the_run_past_the_limit().await;
}

/// Every reason a pod never starts is read by `status` once past the limit.
#[tokio::test]
async fn stuck_pods_are_exited_with_their_reason() {
    let cases = [
        ("ErrImagePull", waiting("ErrImagePull", "manifest unknown")),
        (
            "CreateContainerConfigError",
            waiting("CreateContainerConfigError", "secret \"x\" not found"),
        ),
        (
            "InvalidImageName",
            waiting("InvalidImageName", "couldn't parse image name"),
        ),
    ];
    for (reason, state) in cases {
        let server = FakeApiServer::new();
        let runner = new_runner(&server);
        let handle = runner.launch(spec(TaskId::new())).await.unwrap();
        server.put_pod(&kube_support::pod(&handle.0, ago(30), state));
        match runner.status(&handle).await.unwrap() {
            RunStatus::Exited {
                code: None,
                reason: got,
            } => assert!(got.contains(reason), "{got}"),
            other => panic!("{reason}: {other:?}"),
        }
    }
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    server.put_pod(&unschedulable_pod(&handle.0, ago(30)));
    match runner.status(&handle).await.unwrap() {
        RunStatus::Exited { code: None, reason } => {
            assert!(
                reason.contains("Unschedulable") && reason.contains("Insufficient memory"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A pod still initializing is not stuck, however long it takes.
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    server.put_pod(&kube_support::pod(
        &handle.0,
        ago(30),
        waiting("ContainerCreating", ""),
    ));
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Pending);
}

/// Cancel deletes the Job with background propagation (the pod and Secret go too), ends
/// the watch without `Exited`, and is idempotent.
async fn cancel_deletes_in_the_background() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    server.put_pod(&kube_support::pod(run, ago(2), running()));
    let stream = runner.watch(&handle, 0).await.unwrap();
    server.print(&pod_name(run), &event(1));
    server.wait_for_call("get", "pods/log", 1).await;
    runner.cancel(&handle).await.unwrap();
    let got = collect(stream).await;
    assert!(
        !got.iter()
            .any(|event| matches!(event, RunnerEvent::Exited { .. })),
        "{got:?}"
    );
    let deletes = server.calls_of("delete", "jobs");
    assert_eq!(
        deletes[0].path,
        format!("/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{run}")
    );
    assert_eq!(
        deletes[0].body.as_ref().unwrap()["propagationPolicy"],
        "Background"
    );
    assert!(
        server.names(Kind::Pod).is_empty(),
        "the pod would keep running"
    );
    assert!(server.names(Kind::Secret).is_empty());
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::NotFound);
    runner.cancel(&handle).await.unwrap();
    assert!(matches!(
        runner.watch(&handle, 0).await,
        Err(RunnerError::UnknownRun(_))
    ));
    server
}

#[tokio::test]
async fn cancel_deletes_in_the_background_test() {
    cancel_deletes_in_the_background().await;
}

/// A worker that restarts re-attaches: a new runner (new client, nothing in memory)
/// finds the running Job, and its watch replays from the log skipping what the caller
/// has; a broken log stream is resumed without repeating events.
async fn reattach_after_restart() -> FakeApiServer {
    let server = FakeApiServer::new();
    let task_id = TaskId::new();
    let handle = {
        let first = new_runner(&server);
        let handle = first.launch(spec(task_id)).await.unwrap();
        let run = handle.0.clone();
        server.put_pod(&kube_support::pod(&run, ago(5), running()));
        let mut stream = first.watch(&handle, 0).await.unwrap();
        server.print(&pod_name(&run), &event(1));
        server.print(&pod_name(&run), &event(2));
        assert_eq!(stream.next().await.unwrap(), events(1..=1)[0]);
        assert_eq!(stream.next().await.unwrap(), events(2..=2)[0]);
        first.detach(&handle).await.unwrap();
        assert_eq!(collect(stream).await, vec![], "detached: no Exited");
        handle
    };
    let run = handle.0.as_str();
    let pod = pod_name(run);
    let second = new_runner(&server);
    let selector = BTreeMap::from([(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string())]);
    let listed = second.list(&selector).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, handle);
    assert_eq!(listed[0].status, RunStatus::Running);
    assert_eq!(listed[0].task_id(), Some(task_id));
    assert_eq!(second.status(&handle).await.unwrap(), RunStatus::Running);

    let mut stream = second.watch(&handle, 2).await.unwrap();
    server.print(&pod, &event(3));
    assert_eq!(stream.next().await.unwrap(), events(3..=3)[0]);
    let opened = server.calls_of("get", "pods/log").len();
    server.break_log(&pod);
    server.print(&pod, &event(4));
    server.wait_for_call("get", "pods/log", opened + 1).await;
    server.print(&pod, &event(5));
    server.close_log(&pod);
    server.put_pod(&kube_support::pod(run, ago(5), terminated(0, "Completed")));
    server.set_job_condition(run, "Complete", "CompletionsReached", "done");
    let mut expected = events(4..=5);
    expected.push(RunnerEvent::Exited {
        code: Some(0),
        reason: "completed".to_string(),
    });
    assert_eq!(collect(stream).await, expected);
    server
}

#[tokio::test]
async fn reattach_after_restart_test() {
    reattach_after_restart().await;
}

/// Runs are listed by label, with their status; runs of other selectors are not.
async fn list_by_labels() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let a = runner.launch(spec(TaskId::new())).await.unwrap();
    let b_spec = spec(TaskId::new());
    let b_task = b_spec.task_id;
    let b = runner.launch(b_spec).await.unwrap();
    server.put_pod(&kube_support::pod(&b.0, ago(1), terminated(3, "Error")));
    let all = runner
        .list(&BTreeMap::from([(
            LABEL_MANAGED_BY.to_string(),
            MANAGED_BY.to_string(),
        )]))
        .await
        .unwrap();
    let names: BTreeSet<RunHandle> = all.iter().map(|run| run.handle.clone()).collect();
    assert_eq!(names, BTreeSet::from([a.clone(), b.clone()]));
    let one = runner
        .list(&BTreeMap::from([(
            LABEL_TASK_ID.to_string(),
            b_task.to_string(),
        )]))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].handle, b);
    assert_eq!(
        one[0].status,
        RunStatus::Exited {
            code: Some(3),
            reason: "Error".to_string()
        }
    );
    let list = &server.calls_of("list", "jobs")[1];
    assert_eq!(
        list.query["labelSelector"],
        format!("{LABEL_TASK_ID}={b_task}")
    );
    server
}

#[tokio::test]
async fn list_by_labels_test() {
    list_by_labels().await;
}

/// The scenarios together make exactly the calls the runner declares (and the Role in
/// `deploy/` grants): none undeclared, none declared but unused.
#[tokio::test]
async fn the_runner_makes_exactly_the_declared_api_calls() {
    let servers = vec![
        launch_builds_a_locked_down_job_and_an_owned_secret().await,
        launch_again_finishes_what_the_first_began().await,
        success_streams_events_then_exit().await,
        failed_job_ends_the_wait().await,
        deadline_exceeded_ends_the_run().await,
        image_pull_error_fails_the_run_past_the_limit().await,
        cancel_deletes_in_the_background().await,
        reattach_after_restart().await,
        list_by_labels().await,
    ];
    let mut made = BTreeSet::new();
    for server in &servers {
        for call in server.calls() {
            assert!(
                call.path.contains(&format!("/namespaces/{NAMESPACE}/")),
                "a call outside the agents' namespace: {call:?}"
            );
        }
        made.extend(server.verbs());
    }
    let declared: BTreeSet<(String, String)> = API_CALLS
        .iter()
        .map(|(verb, resource)| (verb.to_string(), resource.to_string()))
        .collect();
    assert_eq!(made, declared);
}
