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

mod runner_kube_runs;
use runner_kube_runs::*;

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
