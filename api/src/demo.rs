//! `api --demo`: the whole service with a built-in model, so a newcomer can submit a task
//! from the web page and watch it go through every stage without a model key.
//!
//! The model is the scripted OpenAI-compatible server the tests use, started in this
//! process and playing its demo session for every task (list the workspace, read a file,
//! add a one-line note to it, finish; see `DemoSession`): real tool calls, run by the
//! real `agent-rs` in the task's workspace, so the timeline, the diff and the artifacts
//! are the real thing. Only the model's answers are made up.
//!
//! The demo takes no model endpoint. A configured one (`OPENAI_BASE_URL`,
//! `OPENAI_API_KEY`, `AGENT_MODEL` or the `[orchestrator.model]` table) is refused with
//! an error rather than ignored: someone who set a real key and added `--demo` would
//! otherwise believe their model answered.

use orchestrator::config::ModelEndpoint;
use scripted_model::{DemoSession, ScriptedServer};

/// Between two answers of the demo model: long enough to watch the timeline grow.
pub const DEMO_PAUSE_MS: u64 = 700;

/// Why the demo did not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "--demo plays a built-in model and takes no model endpoint, but {0} set; unset it, \
         or start without --demo to use that model"
    )]
    ModelConfigured(String),
    #[error("cannot start the demo model: {0}")]
    Model(#[from] scripted_model::ServerError),
}

/// Refuses a model endpoint configured alongside `--demo`; names every setting found.
pub fn refuse_configured_model(
    configured: &ModelEndpoint,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), DemoError> {
    let mut set = Vec::new();
    let from_env = |name: &'static str| env(name).is_some_and(|value| !value.is_empty());
    for (name, in_file) in [
        ("OPENAI_BASE_URL", configured.base_url.is_some()),
        ("OPENAI_API_KEY", configured.api_key.is_some()),
        ("AGENT_MODEL", configured.model.is_some()),
    ] {
        if from_env(name) {
            set.push(name.to_owned());
        }
        if in_file {
            let key = match name {
                "OPENAI_BASE_URL" => "base_url",
                "OPENAI_API_KEY" => "api_key",
                _ => "model",
            };
            set.push(format!("[orchestrator.model] {key}"));
        }
    }
    match set.len() {
        0 => Ok(()),
        1 => Err(DemoError::ModelConfigured(format!("{} is", set[0]))),
        _ => Err(DemoError::ModelConfigured(format!(
            "{} are",
            set.join(", ")
        ))),
    }
}

/// The demo model, serving until dropped, and the endpoint the agents are given.
#[derive(Debug)]
pub struct DemoModel {
    server: ScriptedServer,
}

impl DemoModel {
    /// Starts the demo model on a free loopback port.
    pub async fn start(pause_ms: u64) -> Result<Self, DemoError> {
        let server = ScriptedServer::start_demo(DemoSession { pause_ms }).await?;
        Ok(Self { server })
    }

    /// The model endpoint the worker hands to every agent: no key, the demo model.
    pub fn endpoint(&self) -> ModelEndpoint {
        ModelEndpoint {
            base_url: Some(self.server.base_url()),
            api_key: None,
            model: Some(self.server.script().model.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn nothing_configured_is_accepted() {
        assert!(refuse_configured_model(&ModelEndpoint::default(), |_| None).is_ok());
        assert!(
            refuse_configured_model(&ModelEndpoint::default(), |_| Some(String::new())).is_ok()
        );
    }

    #[test]
    fn a_configured_key_or_endpoint_is_refused_by_name_without_its_value() {
        let env = |name: &str| (name == "OPENAI_API_KEY").then(|| "sk-live-secret".to_owned());
        let err = refuse_configured_model(&ModelEndpoint::default(), env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("OPENAI_API_KEY is set"), "{err}");
        assert!(!err.contains("sk-live-secret"), "{err}");

        let file = ModelEndpoint {
            base_url: Some("http://localhost:8000/v1".into()),
            api_key: Some(SecretString::from("sk-file")),
            model: None,
        };
        let err = refuse_configured_model(&file, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[orchestrator.model] base_url, [orchestrator.model] api_key are set"),
            "{err}"
        );
    }
}
