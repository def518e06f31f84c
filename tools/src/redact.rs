//! Secret redaction: the values of credentials never leave in a tool's output.
//!
//! The shell tool already keeps secrets out of a child's environment, but a command can
//! still print one it finds on disk, and an HTTP error can echo a header. The registry
//! passes every output and error message through a [`SecretRedactor`] built from the
//! secret values the process knows.

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

/// Name endings that mark a variable as a credential (`FOO_API_KEY`, `BAR_TOKEN`...).
const SECRET_SUFFIXES: &[&str] = &[
    "_API_KEY",
    "_APIKEY",
    "_TOKEN",
    "_SECRET",
    "_SECRET_KEY",
    "_PASSWORD",
    "_ACCESS_KEY",
    "_PRIVATE_KEY",
];

/// Whether an environment variable must be kept from tool processes and outputs: a
/// well-known credential, a name shaped like one, or one of `extra` (configured).
pub fn is_secret_env_var(name: &str, extra: &[String]) -> bool {
    let upper = name.to_ascii_uppercase();
    KNOWN_SECRET_VARS.contains(&upper.as_str())
        || SECRET_SUFFIXES.iter().any(|suffix| upper.ends_with(suffix))
        || extra.iter().any(|e| e.eq_ignore_ascii_case(name))
}

/// Replaces known secret values with `[REDACTED]`.
#[derive(Debug, Clone, Default)]
pub struct SecretRedactor {
    secrets: Vec<String>,
}

/// Values shorter than this are not treated as secrets: redacting `1` or `ab` would mangle
/// ordinary output, and real credentials are longer.
const MIN_SECRET_LEN: usize = 6;

impl SecretRedactor {
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// A redactor for the values of every secret variable in `vars` (usually
    /// `std::env::vars()`, passed in by the binary).
    pub fn from_env_vars(
        vars: impl IntoIterator<Item = (String, String)>,
        extra: &[String],
    ) -> Self {
        Self::new(
            vars.into_iter()
                .filter(|(name, _)| is_secret_env_var(name, extra))
                .map(|(_, value)| value),
        )
    }

    /// Adds more secret values (a key from a config file, say).
    pub fn with_secrets<I, S>(self, more: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(
            self.secrets
                .into_iter()
                .chain(more.into_iter().map(Into::into)),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[REDACTED]");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_everywhere() {
        let redactor = SecretRedactor::new(["sk-test-123456", "tok"]);
        assert_eq!(
            redactor.redact("key=sk-test-123456 again sk-test-123456 tok"),
            "key=[REDACTED] again [REDACTED] tok"
        );
    }

    #[test]
    fn secret_names_are_recognised() {
        assert!(is_secret_env_var("OPENAI_API_KEY", &[]));
        assert!(is_secret_env_var("my_service_token", &[]));
        assert!(is_secret_env_var("DB_PASSWORD", &[]));
        assert!(is_secret_env_var("CUSTOM", &["custom".to_string()]));
        assert!(!is_secret_env_var("PATH", &[]));
        assert!(!is_secret_env_var("TOKENIZERS_PARALLELISM", &[]));
    }

    #[test]
    fn redactor_from_env_takes_only_secret_values() {
        let vars = [
            ("OPENAI_API_KEY".to_string(), "sk-live-abcdef".to_string()),
            ("HOME".to_string(), "/home/someone".to_string()),
        ];
        let redactor = SecretRedactor::from_env_vars(vars, &[]);
        assert_eq!(
            redactor.redact("sk-live-abcdef /home/someone"),
            "[REDACTED] /home/someone"
        );
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let redactor = SecretRedactor::new(["abcdef", "abcdefghij"]);
        assert_eq!(redactor.redact("xabcdefghijx"), "x[REDACTED]x");
    }
}
