//! Secret redaction: the values of credentials never leave in a tool's output.
//!
//! The shell tool already keeps secrets out of a child's environment, but a command can
//! still print one it finds on disk, and an HTTP error can echo a header. The registry
//! passes every output and error message through a [`SecretRedactor`] built from the
//! secret values the process knows; the agent binary passes its events, logs and result
//! through it too. Only values that can be secrets take part ([`could_be_secret`]), so a
//! `DB_PASSWORD=postgres` never turns every "postgres" into a placeholder.
//!
//! Each secret is shown as a placeholder naming where it came from,
//! `[REDACTED:DB_PASSWORD]`, so what the model reads stays consistent with the file it
//! edits: when it copies a line holding a placeholder into `edit_file_content` or
//! `apply_patch`, [`SecretRedactor::restore_within`] puts the value back, but only in a
//! file that already holds that value. The model never sees a secret and can never write
//! one anywhere new (OpenHands and browser-use restore masked secrets in a tool's
//! arguments the same way; here the file itself must vouch for the value). Other tools
//! (the shell, HTTP) never get values back: they are where a secret would leave.

mod detect;

use std::sync::Arc;

pub use detect::{could_be_secret, known_format_of, known_formats_in, shannon_entropy};

/// Environment variables that always hold credentials.
const KNOWN_SECRET_VARS: &[&str] = &[
    "OPENAI_API_KEY",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ANTHROPIC_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "COS_SECRET_KEY",
    "API_DEV_TOKEN",
];

/// Name endings that mark a variable as a credential (`FOO_API_KEY`, `BAR_TOKEN`,
/// `PGPASSWORD`, `MYSQL_PWD`...). Broad on purpose: a value is redacted only when it can
/// be a secret ([`could_be_secret`]), so a name caught here with an ordinary value
/// (`SIGNING_KEY=dev`) corrupts no text; it is only kept from commands.
const SECRET_SUFFIXES: &[&str] = &[
    "_KEY",
    "_APIKEY",
    "_TOKEN",
    "_SECRET",
    "PASSWORD",
    "_PASSWD",
    "_PASS",
    "_PWD",
    "_CREDENTIALS",
];

/// The placeholder of a secret known by value only.
const UNNAMED: &str = "[REDACTED]";

/// Whether an environment variable must be kept from tool processes and outputs: a
/// well-known credential, a name shaped like one, or one of `extra` (configured).
pub fn is_secret_env_var(name: &str, extra: &[String]) -> bool {
    let upper = name.to_ascii_uppercase();
    KNOWN_SECRET_VARS.contains(&upper.as_str())
        || SECRET_SUFFIXES.iter().any(|suffix| upper.ends_with(suffix))
        || extra.iter().any(|e| e.eq_ignore_ascii_case(name))
}

/// One secret value and the placeholder shown instead.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Secret {
    value: String,
    placeholder: String,
}

/// Replaces secret values with placeholders, and puts them back where that is safe.
#[derive(Debug, Clone, Default)]
pub struct SecretRedactor {
    /// Longest value first, so a secret that contains another is replaced whole.
    secrets: Arc<Vec<Secret>>,
}

/// A placeholder in a tool's arguments that cannot be put back: the file it is meant
/// for does not hold the secret it stands for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{placeholder}` stands for a secret value the agent is not shown, and it can stand for \
     it only in a file that already holds that value; this file does not. Write the text \
     without it (read the value from the environment or a config file at run time instead)"
)]
pub struct PlaceholderNotInFile {
    pub placeholder: String,
}

impl SecretRedactor {
    /// A redactor for values known without a name (shown as `[REDACTED]`, never put
    /// back). Values that cannot be secrets are left out.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::default().with_secrets(secrets)
    }

    /// A redactor for the values of every secret variable in `vars` (usually
    /// `std::env::vars()`, passed in by the binary), each shown as
    /// `[REDACTED:VARIABLE]`.
    pub fn from_env_vars(
        vars: impl IntoIterator<Item = (String, String)>,
        extra: &[String],
    ) -> Self {
        let mut named = Vec::new();
        for (name, value) in vars {
            if is_secret_env_var(&name, extra) {
                named.push((name, value));
            } else if let Some(password) = url_password(&value) {
                // `DATABASE_URL=postgres://app:…@db/app`: commands may need the URL, but
                // the password in it is shown as a placeholder.
                named.push((name, password.to_string()));
            }
        }
        Self::default().with_named_secrets(named)
    }

    /// Adds values known without a name (a URL's signature, say).
    pub fn with_secrets<I, S>(self, more: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extended(more.into_iter().map(|value| (None, value.into())))
    }

    /// Adds values with the name their placeholder shows (`OPENAI_API_KEY` for a key
    /// from a config file, say).
    pub fn with_named_secrets<I, N, S>(self, more: I) -> Self
    where
        I: IntoIterator<Item = (N, S)>,
        N: Into<String>,
        S: Into<String>,
    {
        self.extended(
            more.into_iter()
                .map(|(name, value)| (Some(name.into()), value.into())),
        )
    }

    fn extended(self, more: impl Iterator<Item = (Option<String>, String)>) -> Self {
        let mut secrets = Arc::unwrap_or_clone(self.secrets);
        for (name, value) in more {
            if !could_be_secret(&value) || secrets.iter().any(|known| known.value == value) {
                continue;
            }
            let placeholder = match name {
                None => UNNAMED.to_string(),
                Some(name) => unique_placeholder(&secrets, &name),
            };
            secrets.push(Secret { value, placeholder });
        }
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.value.len()));
        Self {
            secrets: Arc::new(secrets),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.secrets.iter() {
            if out.contains(secret.value.as_str()) {
                out = out.replace(secret.value.as_str(), &secret.placeholder);
            }
        }
        out
    }

    /// `text` (an edit tool's argument) with each named placeholder put back to its
    /// secret value, provided `file` (the content the edit applies to; empty for a new
    /// file) already holds that value. A placeholder `file` holds literally stays as it
    /// is; one it holds neither way is refused.
    pub fn restore_within(&self, text: &str, file: &str) -> Result<String, PlaceholderNotInFile> {
        let mut out = text.to_string();
        for secret in self.secrets.iter() {
            if secret.placeholder == UNNAMED || !out.contains(secret.placeholder.as_str()) {
                continue;
            }
            if file.contains(secret.value.as_str()) {
                out = out.replace(secret.placeholder.as_str(), &secret.value);
            } else if !file.contains(secret.placeholder.as_str()) {
                return Err(PlaceholderNotInFile {
                    placeholder: secret.placeholder.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Whether `text` holds a placeholder that [`restore_within`](Self::restore_within)
    /// would put back.
    pub fn has_placeholder(&self, text: &str) -> bool {
        self.secrets.iter().any(|secret| {
            secret.placeholder != UNNAMED && text.contains(secret.placeholder.as_str())
        })
    }

    /// The placeholders of the secrets whose values appear in `text` (each once), to say
    /// which secrets an artifact holds without showing them.
    pub fn secrets_in(&self, text: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .secrets
            .iter()
            .filter(|secret| text.contains(secret.value.as_str()))
            .map(|secret| secret.placeholder.clone())
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

/// The password of a URL with credentials (`scheme://user:password@host/...`), as
/// written (percent-encoded or not: it is matched against text as written).
fn url_password(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once("://")?;
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _host) = authority.rsplit_once('@')?;
    let (_user, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `[REDACTED:NAME]`, or `[REDACTED:NAME_2]`... when another value already shows as it.
fn unique_placeholder(secrets: &[Secret], name: &str) -> String {
    let base = format!("[REDACTED:{name}]");
    if !secrets.iter().any(|secret| secret.placeholder == base) {
        return base;
    }
    (2..)
        .map(|index| format!("[REDACTED:{name}_{index}]"))
        .find(|candidate| {
            !secrets
                .iter()
                .any(|secret| &secret.placeholder == candidate)
        })
        .unwrap_or(base)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
