//! The environment a command runs with: the agent's own, minus its credentials.
//!
//! The agent process holds the model's API key and often a forge token. A command the
//! model writes can print its environment (`env`, `printenv`, a failing script dumping
//! it), so those variables are removed before the child starts, not redacted afterwards.
//! Which names count as secret is decided in one place, [`is_secret_env_var`].
//!
//! The function takes the parent environment as an argument instead of reading it, so it
//! can be tested without changing the test process's own environment.

use std::ffi::OsString;
use std::sync::Mutex;

use crate::redact::is_secret_env_var;

/// The variables commands inherit from this process: [`child_env`] of its environment.
///
/// Worked out once for each list of configured secret names and kept: nothing in the
/// agent sets variables after it starts, and reading and filtering some forty of them
/// for every command was a tenth of the loop's own instructions per turn.
pub(crate) fn own_child_env(configured_secret_names: &[String]) -> Vec<(OsString, OsString)> {
    type Entry = (Vec<String>, Vec<(OsString, OsString)>);
    static KEPT: Mutex<Option<Entry>> = Mutex::new(None);
    let mut kept = KEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((names, env)) = kept.as_ref()
        && names.as_slice() == configured_secret_names
    {
        return env.clone();
    }
    let env = child_env(std::env::vars_os(), configured_secret_names);
    *kept = Some((configured_secret_names.to_vec(), env.clone()));
    env
}

/// The variables a command inherits: every `(name, value)` of `parent` except the
/// credentials (built-in names, credential-shaped names, and `configured_secret_names`).
///
/// Names that are not valid UTF-8 are judged by their lossy decoding, so `FOO\xff_TOKEN`
/// is still recognised by its `_TOKEN` suffix.
pub fn child_env<I>(parent: I, configured_secret_names: &[String]) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    parent
        .into_iter()
        .filter(|(name, _)| !is_secret_env_var(&name.to_string_lossy(), configured_secret_names))
        .collect()
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
