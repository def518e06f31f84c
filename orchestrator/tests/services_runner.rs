//! `[runner] kind` decides where agents run; a Kubernetes runner that cannot find its
//! cluster stops the process at start instead of quietly running agents as local processes.

use orchestrator::Services;
use orchestrator::config::{OrchestratorConfig, RunnerKind};
use orchestrator::services::ServicesError;
use secrecy::SecretSlice;

fn config_in(dir: &std::path::Path, kind: RunnerKind) -> OrchestratorConfig {
    let mut config = OrchestratorConfig {
        data_dir: dir.join("data"),
        ..OrchestratorConfig::default()
    };
    config.runner.kind = kind;
    config
}

fn key() -> SecretSlice<u8> {
    SecretSlice::from(vec![7u8; 32])
}

#[tokio::test]
#[allow(unsafe_code)] // setting the environment: nextest runs each test in its own process
async fn a_kubernetes_runner_without_a_cluster_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing to find: no in-cluster service account, no kubeconfig.
    unsafe {
        std::env::remove_var("KUBERNETES_SERVICE_HOST");
        std::env::remove_var("KUBERNETES_SERVICE_PORT");
        std::env::set_var("KUBECONFIG", dir.path().join("no-such-kubeconfig"));
        std::env::set_var("HOME", dir.path());
    }
    let started = Services::from_config(
        config_in(dir.path(), RunnerKind::Kubernetes),
        "http://127.0.0.1:9",
        key(),
    )
    .await;
    let Err(err) = started else {
        panic!("a kubernetes runner started with no cluster to run on");
    };
    assert!(matches!(err, ServicesError::Runner(_)), "{err:?}");
    assert!(err.to_string().contains("Kubernetes"), "{err}");
}

#[tokio::test]
async fn the_process_runner_is_the_default_and_starts() {
    let dir = tempfile::tempdir().unwrap();
    let started = Services::from_config(
        config_in(dir.path(), RunnerKind::Process),
        "http://127.0.0.1:9",
        key(),
    )
    .await;
    assert!(started.is_ok(), "{:?}", started.err());
}

#[tokio::test]
async fn a_container_runner_whose_engine_does_not_answer_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path(), RunnerKind::Container);
    config.runner.container.socket = Some(format!(
        "unix://{}",
        dir.path().join("no-engine.sock").display()
    ));
    let started = Services::from_config(config, "http://127.0.0.1:9", key()).await;
    let Err(err) = started else {
        panic!("a container runner started with no engine to run on");
    };
    assert!(matches!(err, ServicesError::Runner(_)), "{err:?}");
    assert!(err.to_string().contains("container engine"), "{err}");
}
