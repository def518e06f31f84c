//! `deploy/compose.yaml`, the cluster profile on one host: parsed as YAML (anchors and
//! all), each service checked for what the stack needs, and the service's config file and
//! environment read by the real config code, so a renamed setting or variable fails here
//! rather than at someone's first `compose up`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use orchestrator::OrchestratorConfig;
use orchestrator::config::RunnerKind;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn compose() -> Value {
    let text = std::fs::read_to_string(deploy_dir().join("compose.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// A service's environment as name -> value.
fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .unwrap_or_else(|| panic!("environment is not a map: {service}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// `${NAME...}` references in `value`.
fn references(value: &str) -> Vec<String> {
    value
        .split("${")
        .skip(1)
        .map(|rest| rest.split('}').next().unwrap_or_default().to_string())
        .collect()
}

/// Values as compose would give them with every required variable set to `x`.
fn interpolate(value: &str) -> String {
    let mut out = value.to_string();
    for reference in references(value) {
        out = out.replace(&format!("${{{reference}}}"), "x");
    }
    out
}

#[test]
fn the_stack_has_every_part_of_the_cluster_profile() {
    let compose = compose();
    let services: BTreeSet<&str> = compose["services"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["api", "worker", "mariadb", "redis", "broker", "s3"])
    );
    for (role, name) in [("api", "api"), ("worker", "worker")] {
        let service = &compose["services"][name];
        assert_eq!(service["image"], "agent-rs/service:latest", "{name}");
        let command: Vec<&str> = service["command"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            command,
            ["--role", role, "--config", "/etc/agent-rs/config.toml"]
        );
        assert_eq!(service["read_only"], true, "{name}");
        assert_eq!(service["cap_drop"][0], "ALL", "{name}");
        // On a read-only root the process makes its data folder at start: the api
        // exited with "Read-only file system" before it was a tmpfs.
        let tmpfs: Vec<&str> = service["tmpfs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(tmpfs.contains(&"/var/lib/agent-rs"), "{name}: {tmpfs:?}");
    }
}

#[test]
fn secrets_come_from_required_variables_never_from_the_file() {
    let compose = compose();
    for (name, service) in compose["services"].as_object().unwrap() {
        let Some(env) = service["environment"].as_object() else {
            continue;
        };
        for (key, value) in env {
            let value = value.as_str().unwrap_or_default();
            let secret = ["PASSWORD", "SECRET", "KEY", "_URL"]
                .iter()
                .any(|word| key.contains(word));
            if secret && key != "AGENT_REDIS_URL" && key != "AGENT_S3_ENDPOINT" {
                let refs = references(value);
                assert!(!refs.is_empty(), "{name}: {key} holds a literal value");
                for reference in refs {
                    assert!(
                        reference.contains(":?"),
                        "{name}: {key} has a default (`{reference}`): a missing secret must stop compose"
                    );
                }
            }
        }
    }
}

#[test]
fn the_services_config_and_environment_are_what_the_service_reads() {
    let compose = compose();
    let worker = &compose["services"]["worker"];
    let mounts: Vec<&str> = worker["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let config_mount = mounts
        .iter()
        .find(|mount| mount.ends_with(":/etc/agent-rs/config.toml:ro"))
        .unwrap();
    let config_file = deploy_dir().join(config_mount.split(':').next().unwrap());
    let file: toml::Table = toml::from_str(&std::fs::read_to_string(config_file).unwrap()).unwrap();
    let mut config: OrchestratorConfig = file["orchestrator"].clone().try_into().unwrap();
    assert!(file["api"]["listen"].as_str().unwrap().ends_with(":8080"));

    let env = environment(worker);
    config
        .apply_env(|name| env.get(name).map(|value| interpolate(value)))
        .unwrap();
    assert_eq!(format!("{:?}", config.store.backend), "Mysql");
    assert_eq!(format!("{:?}", config.cache.backend), "Redis");
    assert_eq!(format!("{:?}", config.queue.backend), "Kafka");
    assert_eq!(format!("{:?}", config.blob.backend), "S3");
    assert_eq!(config.queue.kafka.brokers, "broker:9092");

    // Agents run as containers on the engine whose socket the worker mounts, and the run
    // folders have one path for the worker and the engine.
    assert_eq!(config.runner.kind, RunnerKind::Container);
    let container = &config.runner.container;
    assert!(
        container.egress(),
        "agents must not get a network of their own"
    );
    let socket = container.socket_path();
    assert!(
        mounts
            .iter()
            .any(|mount| mount.ends_with(&format!(":{socket}"))),
        "the worker does not mount {socket}: {mounts:?}"
    );
    let state = container.state_dir.as_ref().unwrap().display().to_string();
    assert!(
        mounts.contains(&format!("{state}:{state}").as_str()),
        "the run folders are not at one path inside and out: {mounts:?}"
    );
    // The API and the worker see the same backends.
    assert_eq!(environment(&compose["services"]["api"]), env);
}
