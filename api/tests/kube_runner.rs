//! The service with `[orchestrator.runner] kind = "kubernetes"`, end to end: the `api`
//! binary finds its cluster through `KUBECONFIG`, as it does outside a cluster, and builds
//! its runner through the same configuration path as in production. The cluster is the
//! fake API server over real HTTP on loopback, with the fake kubelet running each Job's
//! containers as local processes (the real `agent-rs install` of the init container, then
//! the real `agent-rs job`, its environment read from the Job and its Secret). A task
//! submitted over REST goes QUEUED, RUNNING_AGENT, COMPLETED with its diff; an
//! environment image the node cannot pull fails its task with the kubelet's reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::collections::BTreeSet;

use e2e_support::*;
use orchestrator::runner::kubernetes::API_CALLS;
use serde_json::{Value, json};
use test_support::fake_kube::{FakeApiServer, FakeKubelet, Kind, NAMESPACE};
use test_support::{agent_runs, apply_to_original};

const AGENT_IMAGE: &str = "registry.example/agent-rs/agent:1.0";
const ENV_IMAGE: &str = "registry.example/env/base:1.0";
/// The model key, which must reach the agent through the run's Secret only.
const MODEL_KEY: &str = "sk-kube-e2e-key-4711";

/// The service over the fake cluster, and the cluster.
struct Cluster {
    server: FakeApiServer,
    _kubelet: FakeKubelet,
    _home: Home,
    api: Api,
}

/// The api binary (API, worker and reconciler) running its agents as Jobs in the
/// environment image `environment_image`; the node has [`AGENT_IMAGE`] and [`ENV_IMAGE`].
async fn start(environment_image: &str, model: &scripted_model::ScriptedServer) -> Cluster {
    let server = FakeApiServer::new();
    let base = server.serve().await;
    let home = Home::new(&format!(
        "[orchestrator.runner]\nkind = \"kubernetes\"\n\n\
         [orchestrator.runner.kubernetes]\nnamespace = \"{NAMESPACE}\"\n\
         agent_image = \"{AGENT_IMAGE}\"\nenvironment_image = \"{environment_image}\"\n\
         stuck_after_secs = 1\n"
    ));
    let kubeconfig = home.dir.path().join("kubeconfig");
    FakeApiServer::write_kubeconfig(&base, &kubeconfig);
    let agent = tokio::task::spawn_blocking(agent_binary).await.unwrap();
    let kubelet = FakeKubelet::start(&server, agent, &[AGENT_IMAGE, ENV_IMAGE]);
    let env = [
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("OPENAI_API_KEY", MODEL_KEY.to_string()),
    ];
    let api = Api::start_env(&home, "127.0.0.1:0", model, &[], &env).await;
    Cluster {
        server,
        _kubelet: kubelet,
        _home: home,
        api,
    }
}

fn statuses(events: &[SseEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|event| event.kind() == "status")
        .map(|event| event.data["status"].as_str().unwrap())
        .collect()
}

/// Every call the service made is one the runner declares (and the Role grants), in
/// the agents' namespace.
fn assert_declared_calls(server: &FakeApiServer) {
    let declared: BTreeSet<(String, String)> = API_CALLS
        .iter()
        .map(|(verb, resource)| (verb.to_string(), resource.to_string()))
        .collect();
    for call in server.calls() {
        assert!(
            declared.contains(&(call.verb.clone(), call.resource.clone())),
            "an undeclared call: {call:?}"
        );
        assert!(
            call.path.contains(&format!("/namespaces/{NAMESPACE}/")),
            "{call:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_runs_as_a_kubernetes_job_to_its_diff() {
    let model = scripted_model(json!(fix_add_steps())).await;
    let cluster = start(ENV_IMAGE, &model).await;
    let api = &cluster.api;
    let files = [("calc.py", CALC_PY)];

    let id = api
        .created_id(api.submit_zip(zip_of(&files), "fix add").await)
        .await;
    let events = api.follow_events(&id).await;
    let statuses = statuses(&events);
    assert_eq!(statuses.first(), Some(&"QUEUED"), "{statuses:?}");
    assert!(statuses.contains(&"RUNNING_AGENT"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"COMPLETED"), "{statuses:?}");
    // The agent's events came through the pod's log stream.
    let kinds: Vec<&str> = events
        .iter()
        .map(SseEvent::kind)
        .filter(|kind| *kind != "status")
        .collect();
    assert_eq!(kinds.first(), Some(&"task_started"), "{kinds:?}");
    assert!(kinds.contains(&"tool_call"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"task_finished"), "{kinds:?}");

    let task = api.task(&id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["result"]["final_message"], "Fixed add.", "{task}");
    let diff = api.artifact(&id, "diff.patch").await;
    assert_eq!(
        apply_to_original(&files, &diff),
        "def add(a, b):\n    return a + b\n"
    );

    // One Job, labelled with the task, holding no secret; its Secret did.
    let creates = cluster.server.calls_of("create", "jobs");
    assert_eq!(creates.len(), 1, "{:?}", cluster.server.verbs());
    let job: &Value = creates[0].body.as_ref().unwrap();
    assert_eq!(job["metadata"]["labels"]["agent-rs/task-id"], id.as_str());
    assert!(!job.to_string().contains(MODEL_KEY), "the key is inline");
    assert!(!job.to_string().contains("sig="), "a signed URL is inline");
    assert_eq!(cluster.server.calls_of("create", "secrets").len(), 1);
    // The model saw the key, which only the Secret carried.
    let requests = model.requests();
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {MODEL_KEY}").as_str())
    );
    assert_eq!(agent_runs(&model), 1, "the agent ran once");
    assert_declared_calls(&cluster.server);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_the_node_cannot_pull_fails_the_task_with_its_reason() {
    let model = scripted_model(json!(fix_add_steps())).await;
    let missing = "registry.example/env/missing:9";
    let cluster = start(missing, &model).await;
    let api = &cluster.api;

    let id = api
        .created_id(
            api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), "fix add")
                .await,
        )
        .await;
    let events = api.follow_events(&id).await;
    let statuses = statuses(&events);
    assert_eq!(statuses.first(), Some(&"QUEUED"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"FAILED"), "{statuses:?}");
    let task = api.task(&id).await;
    assert_eq!(task["status"], "FAILED", "{task}");
    let error = task.to_string();
    assert!(
        error.contains("ErrImagePull") && error.contains(missing),
        "the reason is lost: {task}"
    );
    // Nothing ran, and nothing is left waiting in the cluster: the Job was deleted in
    // the background, its Secret with it.
    assert_eq!(agent_runs(&model), 0);
    let deletes = cluster.server.calls_of("delete", "jobs");
    assert!(!deletes.is_empty(), "{:?}", cluster.server.verbs());
    assert_eq!(
        deletes[0].body.as_ref().unwrap()["propagationPolicy"],
        "Background"
    );
    assert!(cluster.server.names(Kind::Job).is_empty());
    assert!(cluster.server.names(Kind::Secret).is_empty());
    assert_declared_calls(&cluster.server);
}
