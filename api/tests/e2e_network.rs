//! End to end, an allow-list of hosts in the embedded service: the agent runs in the
//! runner's sandbox (no network but the run's egress proxy, which keeps the list), its
//! commands in a sandbox of their own (Landlock there: bubblewrap cannot nest below the
//! runner's `/proc`) whose one way out is that proxy. The allowed host answers, by plain
//! HTTP and by a `CONNECT` tunnel, to the agent's commands and to the setup; another
//! host, and a listed name that resolves to loopback without being pinned by the server,
//! are refused with the reason in the command's output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use e2e_support::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP server on loopback answering `hello from svc <path>`; its port and how many
/// requests reached it.
async fn service() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let read = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..read]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("?").to_string();
                counter.fetch_add(1, Ordering::SeqCst);
                let body = format!("hello from svc {path}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_hosts_are_reached_through_the_runners_proxy_and_the_rest_refused() {
    let (port, seen) = service().await;
    let commands = format!(
        "curl -sS http://svc.test:{port}/plain; echo; \
         curl -sS -p http://svc.test:{port}/tunnel; echo; \
         curl -sS http://other.test:{port}/; echo; \
         curl -sS http://localhost:{port}/; echo; \
         cat fetched.txt"
    );
    let model = scripted_model(json!([
        shell_step(&commands),
        {"type": "message", "content": "Done."}
    ]))
    .await;
    let home = Home::new(
        "[orchestrator.sandbox]\n\
         allow_hosts = [\"svc.test\", \"localhost\"]\n\n\
         [orchestrator.sandbox.host_addresses]\n\
         \"svc.test\" = \"127.0.0.1\"\n",
    );
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let files = [("calc.py", CALC_PY)];
    let response = api
        .http
        .post(api.url("/api/v1/tasks"))
        .bearer_auth(TOKEN)
        .multipart(
            reqwest::multipart::Form::new()
                .part(
                    "zip_file",
                    reqwest::multipart::Part::bytes(zip_of(&files)).file_name("code.zip"),
                )
                .text("description", "fetch")
                .text(
                    "setup",
                    format!("curl -sS http://svc.test:{port}/setup > fetched.txt"),
                ),
        )
        .send()
        .await
        .unwrap();
    let id = api.created_id(response).await;
    let task = api.wait_for_status(&id, is_terminal).await;
    let stderr = std::fs::read_to_string(home.data().join(format!("runs/{id}.stderr.log")))
        .unwrap_or_default();
    assert_eq!(task["status"], "COMPLETED", "{task}\n{stderr}");
    assert_eq!(task["result"]["sandbox"]["network"], "allow", "{task}");

    let output = model.requests()[1].body.to_string();
    // The allowed host, through both ways a proxy is used, and from the setup.
    assert!(output.contains("hello from svc /plain"), "{output}");
    assert!(output.contains("hello from svc /tunnel"), "{output}");
    assert!(output.contains("hello from svc /setup"), "{output}");
    // Another host: refused, saying which hosts are allowed.
    assert!(output.contains(&format!("other.test:{port}")), "{output}");
    assert!(output.contains("(svc.test, localhost)"), "{output}");
    // A listed name resolving to loopback: refused by the runner's proxy (not pinned
    // there).
    assert!(output.contains("a loopback address"), "{output}");
    assert_eq!(seen.load(Ordering::SeqCst), 3, "{output}");
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "COMPLETED" | "FAILED" | "CANCELLED")
}
