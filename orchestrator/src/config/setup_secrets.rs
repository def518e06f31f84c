//! `[setup_secrets]`: secrets a task's setup script gets, held by the server per owner.
//!
//! A setup often needs a credential (a private registry's token) that the agent must not
//! have: the setup is the task author's script, the agent phase runs what a model wrote
//! from user input. So the secrets live in the server's configuration, per owner (the
//! way pull request tokens do), and a task never carries them: every run of an owner's
//! task that has a setup gets that owner's secrets as variables of the setup alone
//! (`agent-rs job`'s `AGENT_SETUP_ENV` names them; the values travel in the launch's
//! secret environment, never in its plain settings, the run's folder or a log). The
//! agent removes them from its commands' environment and redacts their values from
//! `setup.log` and every other output.
//!
//! ```toml
//! [orchestrator.setup_secrets.owner_env.alice]
//! NPM_TOKEN = "ALICE_NPM_TOKEN"          # the server's variable holding the value
//! [orchestrator.setup_secrets.owner_file.alice]
//! PIP_INDEX_URL = "/run/secrets/alice-pip-index"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// Variables a setup secret may not be named: the agent's own settings, and what decides
/// where its programs and traffic go.
const RESERVED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
];

/// The owners' setup secrets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SetupSecretsConfig {
    /// Owner -> the variable the setup sees -> the server's environment variable that
    /// holds its value (read once at start).
    pub owner_env: BTreeMap<String, BTreeMap<String, String>>,
    /// Owner -> the variable the setup sees -> a file holding its value (a mounted
    /// secret; read at each launch, trailing white space ignored). `owner_env` wins for
    /// a name given in both.
    pub owner_file: BTreeMap<String, BTreeMap<String, PathBuf>>,
    /// Values read from the environment by [`SetupSecretsConfig::resolve_env`].
    #[serde(skip)]
    pub resolved: BTreeMap<String, BTreeMap<String, SecretString>>,
}

/// A name a setup secret may not have; the message says which and why.
#[derive(Debug, thiserror::Error)]
#[error(
    "setup secret `{name}` of owner `{owner}`: {reason}; name it like an environment variable \
     (letters, digits, `_`), not one of the agent's own (AGENT_*, OPENAI_*, PATH, HOME, proxies)"
)]
pub struct InvalidSetupSecret {
    pub owner: String,
    pub name: String,
    pub reason: &'static str,
}

impl SetupSecretsConfig {
    /// Reads the values `owner_env` names from the server's environment.
    pub fn resolve_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        for (owner, names) in &self.owner_env {
            for (name, source) in names {
                if let Some(value) = var(source).map(|value| value.trim().to_string()) {
                    self.resolved
                        .entry(owner.clone())
                        .or_default()
                        .insert(name.clone(), SecretString::from(value));
                }
            }
        }
    }

    /// Every configured name is one a setup may be given.
    pub fn validate(&self) -> Result<(), InvalidSetupSecret> {
        let env = self
            .owner_env
            .iter()
            .flat_map(|(owner, names)| names.keys().map(move |name| (owner, name)));
        let files = self
            .owner_file
            .iter()
            .flat_map(|(owner, names)| names.keys().map(move |name| (owner, name)));
        for (owner, name) in env.chain(files) {
            if let Some(reason) = name_problem(name) {
                return Err(InvalidSetupSecret {
                    owner: owner.clone(),
                    name: name.clone(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// `owner`'s setup secrets: name -> value. A file that cannot be read is left out,
    /// with a warning naming the owner, the variable and the file (never a value).
    pub fn for_owner(&self, owner: &str) -> BTreeMap<String, SecretString> {
        let mut secrets = BTreeMap::new();
        for (name, path) in self.owner_file.get(owner).into_iter().flatten() {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    secrets.insert(
                        name.clone(),
                        SecretString::from(text.trim_end().to_string()),
                    );
                }
                Err(err) => {
                    tracing::warn!(%owner, variable = %name, path = %path.display(), error = %err, "cannot read a setup secret's file");
                }
            }
        }
        for (name, value) in self.resolved.get(owner).into_iter().flatten() {
            secrets.insert(name.clone(), value.clone());
        }
        secrets
    }
}

fn name_problem(name: &str) -> Option<&'static str> {
    let variable = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !variable {
        return Some("not a variable name");
    }
    if RESERVED.contains(&name) || name.starts_with("AGENT_") || name.starts_with("OPENAI_") {
        return Some("the agent's own variable");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> SetupSecretsConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn an_owners_secrets_come_from_the_environment_and_files_and_no_one_elses() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pip");
        std::fs::write(&file, "https://mirror.example/simple\n").unwrap();
        let mut secrets = config(&format!(
            "[owner_env.alice]\nNPM_TOKEN = \"ALICE_NPM\"\n\
             [owner_file.alice]\nPIP_INDEX_URL = \"{}\"\n\
             [owner_env.bob]\nNPM_TOKEN = \"BOB_NPM\"\n",
            file.display()
        ));
        secrets.resolve_env(|name| (name == "ALICE_NPM").then(|| "npm-secret ".to_string()));
        secrets.validate().unwrap();
        let alice = secrets.for_owner("alice");
        use secrecy::ExposeSecret;
        assert_eq!(alice["NPM_TOKEN"].expose_secret(), "npm-secret");
        assert_eq!(
            alice["PIP_INDEX_URL"].expose_secret(),
            "https://mirror.example/simple"
        );
        // Bob's variable is not set on the server: bob gets nothing, and never alice's.
        assert!(secrets.for_owner("bob").is_empty());
        assert!(secrets.for_owner("carol").is_empty());
    }

    #[test]
    fn the_agents_own_variables_cannot_be_setup_secrets() {
        for name in [
            "OPENAI_API_KEY",
            "AGENT_TASK",
            "HTTPS_PROXY",
            "PATH",
            "1X",
            "A-B",
        ] {
            let err = config(&format!("[owner_env.alice]\n\"{name}\" = \"X\"\n"))
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`{name}`")), "{err}");
        }
    }
}
