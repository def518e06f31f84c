//! The `api` binary: `token create` stores a working token; the server registers
//! `API_DEV_TOKEN`, serves, and exits cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use orchestrator::TaskStore;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_api");

#[tokio::test]
async fn token_create_prints_a_token_whose_hash_is_stored_for_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = Command::new(BIN)
        .args(["token", "create", "carol", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(token.len() > 32, "{token}");
    let store = api::embedded::open_store(&data).await.unwrap();
    assert_eq!(
        store
            .owner_of_token(&api::auth::hash_token(&token))
            .await
            .unwrap()
            .as_deref(),
        Some("carol")
    );
    assert_eq!(
        store.owner_of_token(&token).await.unwrap(),
        None,
        "stored hashed"
    );
}

#[tokio::test]
async fn server_accepts_the_dev_token_and_stops_on_sigterm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--no-worker", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("API_DEV_TOKEN", "dev-secret")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The log line announcing the bound address is the readiness signal.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("exited before listening");
        if let Some((_, rest)) = line.split_once(" listening addr=") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/api/v1/tasks"))
        .bearer_auth("dev-secret")
        .json(&serde_json::json!({"git_url": "https://140.82.112.3/o/r.git", "description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
}
