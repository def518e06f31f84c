//! The Kubernetes manifests in `deploy/`: rendered as `kubectl kustomize` renders them
//! (each overlay too), every object parsed into its typed `k8s-openapi` struct and
//! written back unchanged (a misspelt field would be dropped), and the wiring between
//! them checked: the Role grants exactly what the Job runner calls, the agents'
//! NetworkPolicy selects the pods the runner labels, probes and selectors line up.
//!
//! Without `kubectl` on the machine only the base is rendered, by reading the files its
//! `kustomization.yaml` lists (it has no patches).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use orchestrator::OrchestratorConfig;
use orchestrator::config::RunnerKind;
use orchestrator::runner::kubernetes::API_CALLS;
use orchestrator::runner::{LABEL_MANAGED_BY, MANAGED_BY};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every object of `dir`'s kustomization, as JSON values.
fn render(dir: &Path) -> Vec<Value> {
    let text = match Command::new("kubectl").arg("kustomize").arg(dir).output() {
        Ok(output) => {
            assert!(
                output.status.success(),
                "kubectl kustomize {}: {}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => plain_base(dir),
        Err(err) => panic!("cannot run kubectl: {err}"),
    };
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    documents.into_iter().filter(|doc| !doc.is_null()).collect()
}

/// The base without kustomize: its resource files one after the other.
fn plain_base(dir: &Path) -> String {
    let kustomization: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    assert!(
        kustomization.get("patches").is_none(),
        "{} has patches: rendering it needs kubectl",
        dir.display()
    );
    kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| std::fs::read_to_string(dir.join(file.as_str().unwrap())).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn kubectl_present() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok()
}

/// The rendered objects, each parsed into its type.
#[derive(Default)]
struct Objects {
    namespaces: Vec<Namespace>,
    config_maps: Vec<ConfigMap>,
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    autoscalers: Vec<HorizontalPodAutoscaler>,
    budgets: Vec<PodDisruptionBudget>,
    network_policies: Vec<NetworkPolicy>,
}

/// `value` as a `T`, which must write back to the same JSON.
fn typed<T: DeserializeOwned + Serialize>(value: &Value) -> T {
    let object: T =
        serde_json::from_value(value.clone()).unwrap_or_else(|err| panic!("{err}: {value}"));
    let written = serde_json::to_value(&object).unwrap();
    assert_eq!(&written, value, "a field did not survive parsing");
    object
}

fn parse(values: &[Value]) -> Objects {
    let mut objects = Objects::default();
    for value in values {
        let kind = value["kind"].as_str().unwrap_or_default();
        match kind {
            "Namespace" => objects.namespaces.push(typed(value)),
            "ConfigMap" => objects.config_maps.push(typed(value)),
            "ServiceAccount" => objects.service_accounts.push(typed(value)),
            "Role" => objects.roles.push(typed(value)),
            "RoleBinding" => objects.role_bindings.push(typed(value)),
            "Deployment" => objects.deployments.push(typed(value)),
            "Service" => objects.services.push(typed(value)),
            "HorizontalPodAutoscaler" => objects.autoscalers.push(typed(value)),
            "PodDisruptionBudget" => objects.budgets.push(typed(value)),
            "NetworkPolicy" => objects.network_policies.push(typed(value)),
            other => panic!("unexpected kind `{other}` in deploy/"),
        }
    }
    objects
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace
        .as_deref()
        .expect("every namespaced object names its namespace")
}

fn deployment<'a>(objects: &'a Objects, name: &str) -> &'a Deployment {
    objects
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no Deployment {name}"))
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

/// The service's config (`[orchestrator]` of the ConfigMap's `config.toml`).
fn orchestrator_config(objects: &Objects) -> OrchestratorConfig {
    let map = objects
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("agent-rs-config"))
        .expect("the config map");
    let text = &map.data.as_ref().unwrap()["config.toml"];
    let file: toml::Table = toml::from_str(text).unwrap();
    let orchestrator = file["orchestrator"].clone();
    orchestrator.try_into().unwrap()
}

fn check_locked_down(container: &Container) {
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(
        security.allow_privilege_escalation,
        Some(false),
        "{}",
        container.name
    );
    assert_eq!(
        security.read_only_root_filesystem,
        Some(true),
        "{}",
        container.name
    );
    let drop = security
        .capabilities
        .as_ref()
        .unwrap()
        .drop
        .as_ref()
        .unwrap();
    assert_eq!(drop, &vec!["ALL".to_string()]);
    for var in container.env.iter().flatten() {
        let upper = var.name.to_uppercase();
        if upper.contains("KEY") || upper.contains("PASSWORD") || upper.contains("TOKEN") {
            assert!(
                var.value.is_none(),
                "{} is inline in {}",
                var.name,
                container.name
            );
            assert!(var.value_from.as_ref().unwrap().secret_key_ref.is_some());
        }
    }
}

/// The wiring every rendering must keep.
fn check(objects: &Objects) {
    let config = orchestrator_config(objects);
    assert_eq!(config.runner.kind, RunnerKind::Kubernetes);
    let agents_ns = config.runner.kubernetes.namespace.as_str();
    assert!(
        objects
            .namespaces
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(agents_ns))
    );

    // The Role: exactly the runner's calls, in the agents' namespace.
    assert_eq!(objects.roles.len(), 1);
    let role = &objects.roles[0];
    assert_eq!(namespace_of(&role.metadata), agents_ns);
    let mut granted = BTreeSet::new();
    for rule in role.rules.iter().flatten() {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                let expected_group = if resource == "jobs" { "batch" } else { "" };
                assert_eq!(
                    group, expected_group,
                    "{resource} is in the wrong API group"
                );
                for verb in &rule.verbs {
                    assert_ne!(verb, "*");
                    granted.insert((verb.clone(), resource.clone()));
                }
            }
        }
    }
    let called: BTreeSet<(String, String)> = API_CALLS
        .iter()
        .map(|(v, r)| (v.to_string(), r.to_string()))
        .collect();
    assert_eq!(
        granted, called,
        "the Role must grant what the runner calls, nothing more"
    );

    // Bound to the worker's service account, and only the worker's.
    let worker = deployment(objects, "agent-rs-worker");
    let worker_sa = pod_spec(worker).service_account_name.as_deref().unwrap();
    assert_eq!(objects.role_bindings.len(), 1);
    let binding = &objects.role_bindings[0];
    assert_eq!(namespace_of(&binding.metadata), agents_ns);
    assert_eq!(binding.role_ref.name, role.metadata.name.clone().unwrap());
    let subjects = binding.subjects.as_ref().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].name, worker_sa);
    assert_eq!(
        subjects[0].namespace.as_deref(),
        Some(namespace_of(&worker.metadata))
    );
    assert!(
        objects
            .service_accounts
            .iter()
            .any(|sa| sa.metadata.name.as_deref() == Some(worker_sa))
    );

    // The API holds no token; both roles probe /healthz and /readyz and are locked down.
    let api = deployment(objects, "agent-rs-api");
    assert_eq!(pod_spec(api).automount_service_account_token, Some(false));
    for deployment in [api, worker] {
        let spec = pod_spec(deployment);
        assert_eq!(
            spec.security_context.as_ref().unwrap().run_as_non_root,
            Some(true)
        );
        for container in &spec.containers {
            check_locked_down(container);
            let path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
                probe
                    .as_ref()
                    .unwrap()
                    .http_get
                    .as_ref()
                    .unwrap()
                    .path
                    .clone()
                    .unwrap()
            };
            assert_eq!(path(&container.liveness_probe), "/healthz");
            assert_eq!(path(&container.readiness_probe), "/readyz");
            let args = container.args.as_ref().unwrap();
            assert!(args.windows(2).any(|w| w[0] == "--role"), "{args:?}");
        }
    }

    // Service, autoscaler and budget point at the API's pods.
    let api_labels = api
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    let selects = |selector: &std::collections::BTreeMap<String, String>| {
        selector.iter().all(|(k, v)| api_labels.get(k) == Some(v))
    };
    assert!(
        objects
            .services
            .iter()
            .any(|s| selects(s.spec.as_ref().unwrap().selector.as_ref().unwrap()))
    );
    assert!(objects.budgets.iter().any(|b| {
        selects(
            b.spec
                .as_ref()
                .unwrap()
                .selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap(),
        )
    }));
    let hpa = &objects.autoscalers[0];
    assert_eq!(
        hpa.spec.as_ref().unwrap().scale_target_ref.name,
        "agent-rs-api"
    );

    // The agents' NetworkPolicy: selects the runner's pods, no ingress, three egress
    // rules (DNS, model, object store).
    assert_eq!(objects.network_policies.len(), 1);
    let policy = &objects.network_policies[0];
    assert_eq!(namespace_of(&policy.metadata), agents_ns);
    let spec = policy.spec.as_ref().unwrap();
    let selected = spec
        .pod_selector
        .as_ref()
        .unwrap()
        .match_labels
        .clone()
        .unwrap();
    assert_eq!(
        selected.get(LABEL_MANAGED_BY).map(String::as_str),
        Some(MANAGED_BY)
    );
    assert_eq!(
        spec.policy_types.clone().unwrap(),
        vec!["Ingress", "Egress"]
    );
    assert_eq!(spec.ingress.as_ref().map(Vec::len), Some(0));
    let egress = spec.egress.as_ref().unwrap();
    assert_eq!(egress.len(), 3, "DNS, the model endpoint, the object store");
    let dns_ports: Vec<_> = egress[0]
        .ports
        .iter()
        .flatten()
        .map(|p| p.port.clone())
        .collect();
    assert!(
        dns_ports.iter().all(|p| format!("{p:?}").contains("53")),
        "{dns_ports:?}"
    );
    for rule in egress {
        assert!(
            rule.to.as_ref().is_some_and(|to| !to.is_empty()),
            "an egress rule open to all"
        );
        assert!(rule.ports.as_ref().is_some_and(|ports| !ports.is_empty()));
    }
}

#[test]
fn base_manifests_parse_and_grant_exactly_the_runners_calls() {
    let objects = parse(&render(&deploy_dir().join("base")));
    check(&objects);
}

#[test]
fn overlays_render_and_keep_the_wiring() {
    if !kubectl_present() {
        assert!(
            std::env::var("CI").is_err(),
            "kubectl is needed to render the overlays (scripts/test installs it)"
        );
        return;
    }
    let overlays = deploy_dir().join("overlays");
    let mut seen = 0;
    for entry in std::fs::read_dir(&overlays).unwrap() {
        let dir = entry.unwrap().path();
        let objects = parse(&render(&dir));
        check(&objects);
        seen += 1;
    }
    assert!(seen >= 2, "production and local");
}
