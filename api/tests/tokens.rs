//! API tokens: `api token list` and `api token revoke`, a revoked token refused, and
//! unknown tokens answered from a bounded cache instead of the store every time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use orchestrator::TaskStore;
use support::{ALICE, Harness, test_config};

const BIN: &str = env!("CARGO_BIN_EXE_api");

fn token_command(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("API_CONFIG")
        .output()
        .unwrap()
}

#[tokio::test]
async fn tokens_are_listed_by_id_and_a_revoked_one_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = token_command(&data, &["create", "carol"]);
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(token_command(&data, &["create", "dave"]).status.success());

    let listed = token_command(&data, &["list"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(!listed.contains(&token), "the token itself is never shown");
    let hash = api::auth::hash_token(&token);
    let carol = listed
        .lines()
        .find(|line| line.contains("carol"))
        .expect("carol's token listed");
    let id = carol.split_whitespace().next().unwrap();
    assert_eq!(id, &hash[..16], "{listed}");
    assert!(carol.trim_end().ends_with('-'), "not revoked yet: {carol}");
    assert!(listed.contains("dave"), "{listed}");

    let revoked = token_command(&data, &["revoke", id]);
    assert!(revoked.status.success(), "{revoked:?}");
    let store = api::embedded::open_store(&data).await.unwrap();
    assert_eq!(store.owner_of_token(&hash).await.unwrap(), None);
    let tokens = store.list_tokens().await.unwrap();
    assert!(
        tokens
            .iter()
            .any(|t| t.owner == "carol" && t.revoked_at.is_some())
    );
    assert!(
        tokens
            .iter()
            .any(|t| t.owner == "dave" && t.revoked_at.is_none())
    );
    // A revoked token cannot come back (say as the dev token at the next start).
    let err = api::auth::register_token(&store, "carol", &token)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    store.close().await;

    let unknown = token_command(&data, &["revoke", "0123456789abcdef"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no token has the id"));
}

#[tokio::test]
async fn a_token_revoked_elsewhere_is_refused_once_its_cache_entry_expires() {
    let config = api::ApiConfig {
        token_cache_secs: 0,
        ..test_config()
    };
    let h = Harness::start_with(config, None).await;
    let list = || h.http.get(h.url("/api/v1/tasks")).bearer_auth(ALICE).send();
    assert_eq!(list().await.unwrap().status(), 200);
    let id = &api::auth::hash_token(ALICE)[..16];
    h.store.revoke_token(id).await.unwrap().unwrap();
    assert_eq!(list().await.unwrap().status(), 401);
}

#[tokio::test]
async fn an_unknown_token_is_refused_from_the_cache_without_asking_the_store_again() {
    let h = Harness::start().await;
    let send = |token: &'static str| h.http.get(h.url("/api/v1/tasks")).bearer_auth(token).send();
    assert_eq!(send("made-up").await.unwrap().status(), 401);
    // With the store gone, a lookup fails (5xx): the repeat never makes one.
    h.store.close().await;
    assert_eq!(send("made-up").await.unwrap().status(), 401);
    let asked = send("another-made-up").await.unwrap().status();
    assert!(asked.is_server_error(), "{asked}");
}
