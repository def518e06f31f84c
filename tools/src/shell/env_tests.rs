use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::child_env;

fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(name, value)| (OsString::from(name), OsString::from(value)))
        .collect()
}

fn names(env: &[(OsString, OsString)]) -> Vec<String> {
    env.iter()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn known_and_credential_shaped_variables_are_removed() {
    let parent = vars(&[
        ("OPENAI_API_KEY", "sk-live-abcdef"),
        ("GITHUB_TOKEN", "ghp_abcdef"),
        ("MY_SERVICE_TOKEN", "tok-abcdef"),
        ("DB_PASSWORD", "hunter22"),
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/home/someone"),
    ]);
    assert_eq!(names(&child_env(parent, &[])), ["PATH", "HOME"]);
}

#[test]
fn configured_secret_names_are_removed_case_insensitively() {
    let parent = vars(&[
        ("INTERNAL_DSN", "postgres://user:pw@db/app"),
        ("internal_dsn", "postgres://user:pw@db/app"),
        ("LANG", "C.UTF-8"),
    ]);
    let configured = vec!["Internal_DSN".to_string()];
    assert_eq!(names(&child_env(parent, &configured)), ["LANG"]);
}

#[test]
fn ordinary_variables_keep_their_values() {
    let parent = vars(&[("TOKENIZERS_PARALLELISM", "false"), ("TERM", "dumb")]);
    let env = child_env(parent.clone(), &[]);
    assert_eq!(env, parent);
}

#[test]
fn non_utf8_names_are_judged_by_their_lossy_text() {
    let secret_name = OsString::from_vec(b"FOO\xff_TOKEN".to_vec());
    let plain_name = OsString::from_vec(b"FOO\xff_BAR".to_vec());
    let parent = vec![
        (secret_name, OsString::from("value")),
        (plain_name.clone(), OsString::from("value")),
    ];
    let env = child_env(parent, &[]);
    assert_eq!(env, vec![(plain_name, OsString::from("value"))]);
}
