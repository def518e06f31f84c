use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

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
fn every_usual_credential_name_is_recognised() {
    for name in [
        "PGPASSWORD",
        "PASSWORD",
        "MYSQL_PWD",
        "DB_PASS",
        "SMTP_PASSWD",
        "STRIPE_SIGNING_KEY",
        "DJANGO_SECRET_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLIENT_SECRET",
    ] {
        assert!(is_secret_env_var(name, &[]), "{name}");
    }
    for name in [
        "PWD",
        "OLDPWD",
        "LESSKEY",
        "KEYBOARD_LAYOUT",
        "PASSTHROUGH",
        "HOME",
    ] {
        assert!(!is_secret_env_var(name, &[]), "{name}");
    }
}

#[test]
fn the_password_of_a_url_in_the_environment_is_redacted_not_the_url() {
    let redactor = SecretRedactor::from_env_vars(
        env(&[
            ("DATABASE_URL", "postgres://app:Xk9mQ2vL7pR4tWz@db:5432/app"),
            ("CACHE_URL", "redis://:hN3-vQ8rT1xW6zK2@cache/0"),
            (
                "LOCAL_URL",
                "postgres://postgres:postgres@localhost/postgres",
            ),
            ("HOMEPAGE", "https://example.com/a:b@c"),
        ]),
        &[],
    );
    assert_eq!(
        redactor.redact("DATABASE_URL=postgres://app:Xk9mQ2vL7pR4tWz@db:5432/app"),
        "DATABASE_URL=postgres://app:[REDACTED:DATABASE_URL]@db:5432/app"
    );
    assert_eq!(
        redactor.redact("redis://:hN3-vQ8rT1xW6zK2@cache/0"),
        "redis://:[REDACTED:CACHE_URL]@cache/0"
    );
    // A weak password (and a URL without credentials) is ordinary text.
    let text = "postgres://postgres:postgres@localhost/postgres https://example.com/a:b@c";
    assert_eq!(redactor.redact(text), text);
}

#[test]
fn redactor_from_env_takes_only_secret_values_and_names_them() {
    let vars = env(&[
        ("OPENAI_API_KEY", "sk-live-abcdef0123456789"),
        ("HOME", "/home/someone-with-a-long-name"),
    ]);
    let redactor = SecretRedactor::from_env_vars(vars, &[]);
    assert_eq!(
        redactor.redact("sk-live-abcdef0123456789 /home/someone-with-a-long-name"),
        "[REDACTED:OPENAI_API_KEY] /home/someone-with-a-long-name"
    );
}

#[test]
fn a_weak_password_is_not_redacted_from_ordinary_text() {
    let redactor = SecretRedactor::from_env_vars(
        env(&[("DB_PASSWORD", "postgres"), ("ADMIN_TOKEN", "changeme")]),
        &[],
    );
    assert!(redactor.is_empty());
    let text = "psql -U postgres -h localhost postgres # changeme";
    assert_eq!(redactor.redact(text), text);
}

#[test]
fn longer_secret_wins_over_its_prefix() {
    let redactor = SecretRedactor::new(["abcdef0123456789", "abcdef0123456789ghijkl"]);
    assert_eq!(redactor.redact("xabcdef0123456789ghijklx"), "x[REDACTED]x");
}

#[test]
fn two_variables_with_one_name_get_distinct_placeholders() {
    let redactor = SecretRedactor::default().with_named_secrets([
        ("KEY", "first-secret-0123456789"),
        ("KEY", "second-secret-987654321"),
    ]);
    let shown = redactor.redact("first-secret-0123456789 second-secret-987654321");
    assert_eq!(shown, "[REDACTED:KEY] [REDACTED:KEY_2]");
}

fn db_redactor() -> SecretRedactor {
    SecretRedactor::from_env_vars(env(&[("DB_PASSWORD", "pg-Xk9mQ2vL7pR4")]), &[])
}

#[test]
fn a_placeholder_is_restored_in_a_file_that_holds_the_value() {
    let redactor = db_redactor();
    let file = "url = \"postgres://app:pg-Xk9mQ2vL7pR4@db/app\"\n";
    let shown = redactor.redact(file);
    assert_eq!(
        shown,
        "url = \"postgres://app:[REDACTED:DB_PASSWORD]@db/app\"\n"
    );
    let old_text = "postgres://app:[REDACTED:DB_PASSWORD]@db/app";
    let new_text = "postgres://app:[REDACTED:DB_PASSWORD]@db-2/app";
    assert_eq!(
        redactor.restore_within(old_text, file).unwrap(),
        "postgres://app:pg-Xk9mQ2vL7pR4@db/app"
    );
    assert_eq!(
        redactor.restore_within(new_text, file).unwrap(),
        "postgres://app:pg-Xk9mQ2vL7pR4@db-2/app"
    );
    assert!(redactor.has_placeholder(new_text));
}

#[test]
fn a_placeholder_is_never_restored_into_a_file_without_the_value() {
    let redactor = db_redactor();
    let err = redactor
        .restore_within("password = [REDACTED:DB_PASSWORD]\n", "other = 1\n")
        .unwrap_err();
    assert_eq!(err.placeholder, "[REDACTED:DB_PASSWORD]");
    assert!(
        redactor
            .restore_within("[REDACTED:DB_PASSWORD]", "")
            .is_err()
    );
}

#[test]
fn a_placeholder_the_file_holds_literally_stays_literal() {
    let redactor = db_redactor();
    let file = "log: connecting with [REDACTED:DB_PASSWORD]\n";
    assert_eq!(
        redactor
            .restore_within("with [REDACTED:DB_PASSWORD]", file)
            .unwrap(),
        "with [REDACTED:DB_PASSWORD]"
    );
    // An unnamed `[REDACTED]` and unknown names are plain text.
    assert_eq!(
        redactor
            .restore_within("[REDACTED] [REDACTED:OTHER]", "")
            .unwrap(),
        "[REDACTED] [REDACTED:OTHER]"
    );
}

#[test]
fn secrets_in_names_what_a_text_holds_without_the_values() {
    let redactor = db_redactor().with_secrets(["unnamed-Secret-0987654321"]);
    assert_eq!(
        redactor.secrets_in("a pg-Xk9mQ2vL7pR4 b pg-Xk9mQ2vL7pR4 unnamed-Secret-0987654321"),
        ["[REDACTED:DB_PASSWORD]", "[REDACTED]"]
    );
    assert!(redactor.secrets_in("nothing here").is_empty());
}
