//! Which values can be secrets, and where known kinds of credentials appear in text.
//!
//! A variable named like a credential (`DB_PASSWORD`) can hold an ordinary word
//! (`postgres`). Redacting every occurrence of such a value would corrupt ordinary text:
//! the model would see `[REDACTED]` where the file says `postgres` and its edits would
//! stop matching. So a value is treated as a secret only when it could be one: a known
//! credential format (OpenAI, GitHub, GitLab, Slack, AWS, Google, Stripe, Hugging Face
//! keys, JWTs, PEM private keys), or long and varied enough that it would not turn up in
//! ordinary text by chance (at least [`MIN_GENERIC_LEN`] characters and
//! [`MIN_ENTROPY_BITS`] bits of Shannon entropy per character, the measure secret
//! scanners such as gitleaks and detect-secrets use).

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

/// Shortest value without a known format that counts as a secret.
pub const MIN_GENERIC_LEN: usize = 12;
/// Least Shannon entropy (bits per character) of such a value: `passwordpassword` and
/// `aaaaaaaaaaaaaaaa` fall under it, a random 12-character token (about 3.5) does not.
pub const MIN_ENTROPY_BITS: f64 = 3.0;
/// Shortest value of any kind that counts: below it nothing is redacted.
const MIN_LEN: usize = 8;

/// One known credential format.
struct KnownFormat {
    kind: &'static str,
    pattern: &'static str,
}

const KNOWN_FORMATS: &[KnownFormat] = &[
    KnownFormat {
        kind: "OpenAI or Anthropic API key",
        pattern: r"sk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}",
    },
    KnownFormat {
        kind: "GitHub token",
        pattern: r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}",
    },
    KnownFormat {
        kind: "GitLab token",
        pattern: r"glpat-[A-Za-z0-9_-]{20,}",
    },
    KnownFormat {
        kind: "Slack token",
        pattern: r"xox[abposr]-[A-Za-z0-9-]{10,}",
    },
    KnownFormat {
        kind: "AWS access key id",
        pattern: r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
    },
    KnownFormat {
        kind: "Google API key",
        pattern: r"AIza[0-9A-Za-z_-]{35}",
    },
    KnownFormat {
        kind: "Stripe key",
        pattern: r"[sr]k_(?:live|test)_[0-9A-Za-z]{24,}",
    },
    KnownFormat {
        kind: "Hugging Face token",
        pattern: r"hf_[A-Za-z0-9]{30,}",
    },
    KnownFormat {
        kind: "JSON Web Token",
        pattern: r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    },
    KnownFormat {
        kind: "private key",
        pattern: r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----",
    },
];

static FORMATS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    KNOWN_FORMATS
        .iter()
        .filter_map(|format| Regex::new(format.pattern).ok().map(|re| (format.kind, re)))
        .collect()
});

/// Whether `value` can be a secret: a known credential format, or long and varied enough
/// (see the module docs). Surrounding whitespace does not count.
pub fn could_be_secret(value: &str) -> bool {
    let value = value.trim();
    if value.chars().count() < MIN_LEN {
        return false;
    }
    if known_format_of(value).is_some() {
        return true;
    }
    value.chars().count() >= MIN_GENERIC_LEN && shannon_entropy(value) >= MIN_ENTROPY_BITS
}

/// The kind of credential `value` is (or starts with), when it has a known format.
pub fn known_format_of(value: &str) -> Option<&'static str> {
    FORMATS
        .iter()
        .find(|(_, re)| re.find(value).is_some_and(|found| found.start() == 0))
        .map(|(kind, _)| *kind)
}

/// The kinds of known credentials that appear in `text`, each once, in format order.
pub fn known_formats_in(text: &str) -> Vec<&'static str> {
    // Nothing to find in nothing, and the patterns are compiled on first use: an empty
    // diff (many runs end with one) should not pay for that.
    if text.is_empty() {
        return Vec::new();
    }
    FORMATS
        .iter()
        .filter(|(_, re)| re.is_match(text))
        .map(|(kind, _)| *kind)
        .collect()
}

/// Shannon entropy of the characters of `text`, in bits per character.
pub fn shannon_entropy(text: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut total = 0usize;
    for c in text.chars() {
        *counts.entry(c).or_default() += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    counts
        .values()
        .map(|&count| {
            let p = count as f64 / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_words_and_settings_are_not_secrets() {
        for value in [
            "postgres",
            "password",
            "changeme",
            "localhost",
            "development",
            "passwordpassword",
            "aaaaaaaaaaaaaaaaaaaa",
            "EMPTY",
            "ollama",
            "true",
            "admin123",
        ] {
            assert!(!could_be_secret(value), "{value}");
        }
    }

    #[test]
    fn keys_and_random_tokens_are_secrets() {
        for value in [
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
            "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
            "AKIAIOSFODNN7EXAMPLE",
            "glpat-xxxxxxxxxxxxxxxxxxxx",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "Xk9#mQ2$vL7pR4tW",
            "3f9a2b7c8d1e4f5a",
            "sk-test-123456",
            "hunter2-correct-horse",
        ] {
            assert!(could_be_secret(value), "{value}");
        }
    }

    #[test]
    fn known_formats_are_named() {
        assert_eq!(
            known_format_of("ghp_0123456789abcdefghijklmnopqrstuvwxyz"),
            Some("GitHub token")
        );
        assert_eq!(
            known_format_of("prefix ghp_0123456789abcdefghijklmnopqrstuvwxyz"),
            None
        );
        assert_eq!(
            known_formats_in("key = \"AKIAIOSFODNN7EXAMPLE\"\n-----BEGIN RSA PRIVATE KEY-----"),
            ["AWS access key id", "private key"]
        );
        assert!(known_formats_in("an ordinary line of code").is_empty());
    }

    #[test]
    fn entropy_grows_with_variety() {
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
    }
}
