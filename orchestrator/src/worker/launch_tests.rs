use secrecy::SecretString;

use super::*;
use crate::config::ModelEndpoint;
use crate::task::TaskStatus;
use crate::test_support::task;

fn config() -> OrchestratorConfig {
    OrchestratorConfig {
        model: ModelEndpoint {
            base_url: Some("http://127.0.0.1:9/v1".to_string()),
            api_key: Some(SecretString::from("sk-secret")),
            model: Some("default-model".to_string()),
        },
        default_task_timeout_secs: 600,
        ..OrchestratorConfig::default()
    }
}

fn uploads() -> BTreeMap<String, String> {
    OUTPUT_NAMES
        .iter()
        .map(|name| (name.to_string(), format!("https://blobs/{name}?sig=x")))
        .collect()
}

#[test]
fn env_carries_the_task_urls_and_model_endpoint() {
    let mut task = task(TaskStatus::DownloadingCode, 0);
    task.target_file = Some("src/lib.rs".to_string());
    let env = agent_env(
        &task,
        &config(),
        "https://blobs/ws?sig=y".to_string(),
        &uploads(),
        None,
    );
    assert_eq!(env["AGENT_TASK_ID"], task.id.to_string());
    assert_eq!(env["AGENT_TASK"], "fix the failing test");
    assert_eq!(env["AGENT_TARGET_FILE"], "src/lib.rs");
    assert_eq!(env["AGENT_WORKSPACE_URL"], "https://blobs/ws?sig=y");
    let urls: BTreeMap<String, String> = serde_json::from_str(&env["AGENT_UPLOAD_URLS"]).unwrap();
    assert_eq!(urls, uploads());
    assert_eq!(env["AGENT_TIMEOUT_SECS"], "600");
    assert_eq!(env["AGENT_MODEL"], "default-model");
    assert_eq!(env["OPENAI_BASE_URL"], "http://127.0.0.1:9/v1");
    assert_eq!(env["OPENAI_API_KEY"], "sk-secret");
    assert!(!env.contains_key("AGENT_MAX_TURNS"));
}

#[test]
fn the_tasks_own_model_and_limits_win() {
    let mut task = task(TaskStatus::DownloadingCode, 0);
    task.model = Some("task-model".to_string());
    task.limits.max_turns = Some(7);
    task.limits.max_tokens = Some(5000);
    task.limits.timeout_secs = Some(42);
    let env = agent_env(&task, &config(), String::new(), &uploads(), None);
    assert_eq!(env["AGENT_MODEL"], "task-model");
    assert_eq!(env["AGENT_MAX_TURNS"], "7");
    assert_eq!(env["AGENT_MAX_TOKENS"], "5000");
    assert_eq!(env["AGENT_TIMEOUT_SECS"], "42");
}

#[test]
fn unset_model_endpoint_fields_are_left_to_the_agent() {
    let task = task(TaskStatus::DownloadingCode, 0);
    let env = agent_env(
        &task,
        &OrchestratorConfig::default(),
        String::new(),
        &uploads(),
        None,
    );
    for name in [
        "AGENT_MODEL",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "AGENT_TARGET_FILE",
    ] {
        assert!(!env.contains_key(name), "{name}");
    }
}

#[test]
fn deadline_is_the_timeout_plus_slack() {
    let mut task = task(TaskStatus::DownloadingCode, 0);
    task.limits.timeout_secs = Some(100);
    let config = config();
    assert_eq!(
        deadline_in(&task, &config),
        Duration::from_secs(100 + config.reconciler.deadline_slack_secs)
    );
}

#[test]
fn signed_urls_outlive_a_long_task() {
    let mut task = task(TaskStatus::DownloadingCode, 0);
    let mut config = config();
    config.signed_url_ttl_secs = 60;
    task.limits.timeout_secs = Some(7200);
    assert!(url_ttl(&task, &config) >= Duration::from_secs(7200));
    config.reconciler.deadline_slack_secs = 0;
    task.limits.timeout_secs = Some(1);
    assert_eq!(url_ttl(&task, &config), Duration::from_secs(60));
}

#[test]
fn every_secret_variable_is_one_the_agent_gets() {
    let env = agent_env(
        &task(TaskStatus::DownloadingCode, 0),
        &config(),
        "https://blobs/ws?sig=y".to_string(),
        &uploads(),
        Some(ResumeUrls {
            diff: "https://blobs/prev-diff?sig=z".to_string(),
            trajectory: "https://blobs/prev-trajectory?sig=z".to_string(),
        }),
    );
    for name in SECRET_ENV {
        assert!(
            env.contains_key(name),
            "{name} is not in the agent's environment"
        );
    }
}

#[test]
fn a_setup_gets_its_owners_secrets_apart_from_the_plain_settings() {
    use secrecy::ExposeSecret;
    let mut config = config();
    config.setup_secrets = toml::from_str(
        "[owner_env.alice]\nNPM_TOKEN = \"ALICE_NPM\"\n[owner_env.bob]\nNPM_TOKEN = \"BOB_NPM\"\n",
    )
    .unwrap();
    config.setup_secrets.resolve_env(|name| match name {
        "ALICE_NPM" => Some("alice-npm-secret".to_string()),
        "BOB_NPM" => Some("bob-npm-secret".to_string()),
        _ => None,
    });
    let mut task = task(TaskStatus::DownloadingCode, 0);
    task.owner = "alice".to_string();
    task.setup = Some("npm ci".to_string());
    let mut env = BTreeMap::new();
    let mut secret_env = BTreeMap::new();
    add_setup_secrets(&task, &config, &mut env, &mut secret_env);
    assert_eq!(env["AGENT_SETUP_ENV"], "NPM_TOKEN");
    assert_eq!(secret_env["NPM_TOKEN"].expose_secret(), "alice-npm-secret");
    assert!(!env.values().any(|value| value.contains("npm-secret")));

    // No setup, no secrets.
    task.setup = None;
    let (mut env, mut secret_env) = (BTreeMap::new(), BTreeMap::new());
    add_setup_secrets(&task, &config, &mut env, &mut secret_env);
    assert!(env.is_empty() && secret_env.is_empty());
}
