use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use secrecy::SecretString;

use super::*;
use crate::runner::{Resources, run_name};
use crate::task::TaskId;

fn launch(base_url: &str, workspace: &str, uploads: &[(&str, &str)]) -> LaunchSpec {
    let task_id = TaskId::new();
    let uploads: BTreeMap<&str, &str> = uploads.iter().copied().collect();
    LaunchSpec {
        name: run_name(task_id, 1),
        task_id,
        attempt: 1,
        labels: BTreeMap::new(),
        env: BTreeMap::from([("OPENAI_BASE_URL".to_string(), base_url.to_string())]),
        secret_env: BTreeMap::from([
            (
                "AGENT_WORKSPACE_URL".to_string(),
                SecretString::from(workspace.to_string()),
            ),
            (
                "AGENT_UPLOAD_URLS".to_string(),
                SecretString::from(serde_json::to_string(&uploads).unwrap()),
            ),
        ]),
        resources: Resources::default(),
        deadline: Duration::from_secs(60),
        image: None,
    }
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

#[test]
fn the_model_endpoint_and_the_exact_signed_paths_are_allowed() {
    let policy = EgressPolicy::from_spec(&launch(
        "http://127.0.0.1:9000/v1",
        "http://127.0.0.1:8080/blobs/t/workspace.tar.gz?sig=abc",
        &[(
            "diff.patch",
            "http://127.0.0.1:8080/blobs/t/out/diff.patch?sig=def",
        )],
    ));
    for allowed in [
        "http://127.0.0.1:9000/v1/chat/completions",
        "http://127.0.0.1:8080/blobs/t/workspace.tar.gz?sig=abc",
        "http://127.0.0.1:8080/blobs/t/out/diff.patch?sig=other",
    ] {
        assert_eq!(policy.refuse_request(&url(allowed)), None, "{allowed}");
    }
    for refused in [
        "http://127.0.0.1:9000/v10/x",
        "http://127.0.0.1:8080/blobs/other-task/workspace.tar.gz",
        "http://127.0.0.1:8080/api/v1/tasks",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:22/",
    ] {
        let reason = policy.refuse_request(&url(refused)).unwrap_or_default();
        assert!(
            reason.contains("only its model endpoint"),
            "{refused}: {reason}"
        );
    }
    // Plain-HTTP destinations are never tunnelled: their paths must be seen.
    assert!(policy.refuse_tunnel("127.0.0.1", 8080).is_some());
}

#[test]
fn a_follow_up_may_read_the_previous_runs_diff_and_trajectory_only() {
    let mut spec = launch(
        "http://127.0.0.1:9000/v1",
        "http://127.0.0.1:8080/blobs/t/workspace.tar.gz?sig=abc",
        &[],
    );
    for (name, value) in [
        (
            "AGENT_RESUME_DIFF_URL",
            "http://127.0.0.1:8080/blobs/t/outputs/diff.patch?sig=d",
        ),
        (
            "AGENT_RESUME_TRAJECTORY_URL",
            "http://127.0.0.1:8080/blobs/t/outputs/trajectory.jsonl?sig=t",
        ),
    ] {
        spec.secret_env
            .insert(name.to_string(), SecretString::from(value.to_string()));
    }
    let policy = EgressPolicy::from_spec(&spec);
    for allowed in [
        "http://127.0.0.1:8080/blobs/t/outputs/diff.patch?sig=d",
        "http://127.0.0.1:8080/blobs/t/outputs/trajectory.jsonl?sig=t",
    ] {
        assert_eq!(policy.refuse_request(&url(allowed)), None, "{allowed}");
    }
    assert!(
        policy
            .refuse_request(&url("http://127.0.0.1:8080/blobs/t/outputs/result.json"))
            .is_some()
    );
}

#[test]
fn an_https_model_endpoint_is_reached_by_a_tunnel_to_its_host_only() {
    let policy = EgressPolicy::from_spec(&launch(
        "https://api.example.com/v1",
        "http://127.0.0.1:8080/w?sig=1",
        &[],
    ));
    assert_eq!(policy.refuse_tunnel("api.example.com", 443), None);
    assert!(policy.refuse_tunnel("api.example.com", 22).is_some());
    assert!(policy.refuse_tunnel("evil.example.com", 443).is_some());
    assert!(policy.refuse_tunnel("169.254.169.254", 443).is_some());
}

#[test]
fn the_saved_policy_holds_no_signature() {
    let dir = tempfile::tempdir().unwrap();
    let policy = EgressPolicy::from_spec(&launch(
        "http://127.0.0.1:9/v1",
        "http://127.0.0.1:8080/w?sig=SECRET-SIGNATURE",
        &[],
    ));
    policy.save(dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join(POLICY_FILE)).unwrap();
    assert!(!text.contains("SECRET-SIGNATURE"), "{text}");
    assert_eq!(EgressPolicy::load(dir.path()), Some(policy));
}

/// A one-request HTTP server on loopback that answers with the path it was asked for.
async fn upstream() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let read = stream.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..read]).to_string();
            let line = head.lines().next().unwrap_or("").to_string();
            let body = format!("{line}|close={}", head.contains("Connection: close"));
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    port
}

async fn ask(socket: &Path, request: &str) -> String {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    response
}

#[tokio::test]
async fn the_proxy_forwards_allowed_requests_and_refuses_the_rest_with_a_reason() {
    let port = upstream().await;
    let run_dir = tempfile::tempdir().unwrap();
    let policy = EgressPolicy::from_spec(&launch(
        &format!("http://127.0.0.1:{port}/v1"),
        &format!("http://127.0.0.1:{port}/blobs/w?sig=x"),
        &[],
    ));
    let stop = CancellationToken::new();
    spawn(run_dir.path().to_path_buf(), policy, stop.clone()).unwrap();
    let socket = run_dir.path().join(EGRESS_DIR).join(SOCKET);

    let ok = ask(
        &socket,
        &format!(
            "POST http://127.0.0.1:{port}/v1/chat/completions HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(
        ok.contains("POST /v1/chat/completions HTTP/1.1|close=true"),
        "{ok}"
    );

    let refused = ask(
        &socket,
        &format!("GET http://127.0.0.1:{port}/api/v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n"),
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(
        refused.contains("only its model endpoint and its own signed URLs"),
        "{refused}"
    );

    let metadata = ask(
        &socket,
        "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n",
    )
    .await;
    assert!(metadata.starts_with("HTTP/1.1 403"), "{metadata}");
    stop.cancel();
}

#[tokio::test]
async fn an_allow_list_opens_its_hosts_but_never_the_services_own_routes() {
    let mut spec = launch(
        "http://127.0.0.1:9000/v1",
        "http://127.0.0.1:8080/blobs/t/workspace.tar.gz?sig=abc",
        &[],
    );
    spec.env.insert(
        "AGENT_NETWORK".to_string(),
        "allow=svc.test,127.0.0.1,localhost".to_string(),
    );
    let pinned = BTreeMap::from([("svc.test".to_string(), "127.0.0.1".parse().unwrap())]);
    let policy = EgressPolicy::from_spec(&spec).with_host_addresses(&pinned);
    assert_eq!(policy.refuse_tunnel("svc.test", 443), None);
    assert_eq!(
        policy.refuse_request(&url("http://svc.test:8081/any/path")),
        None
    );
    // The service's own host:port is decided by its rules alone, listed or not.
    let reason = policy.refuse_tunnel("127.0.0.1", 8080).unwrap_or_default();
    assert!(
        reason.contains("the hosts it allows (svc.test, 127.0.0.1, localhost)"),
        "{reason}"
    );
    assert!(
        policy
            .refuse_request(&url("http://127.0.0.1:8080/api/v1/tasks"))
            .is_some()
    );
    assert!(policy.refuse_tunnel("other.test", 443).is_some());
    // Pinned names go to their address; other listed names never to a private one.
    assert_eq!(
        policy.addresses("svc.test", 443).await.unwrap(),
        vec!["127.0.0.1:443".parse().unwrap()]
    );
    let loopback = policy.addresses("localhost", 80).await.unwrap_err();
    assert!(loopback.contains("a loopback address"), "{loopback}");
    let literal = policy.addresses("127.0.0.1", 81).await.unwrap_err();
    assert!(literal.contains("a loopback address"), "{literal}");
    // The model endpoint's own address is the resolver's, as before.
    assert_eq!(
        policy.addresses("127.0.0.1", 9000).await.unwrap(),
        vec!["127.0.0.1:9000".parse().unwrap()]
    );
    // A restarted server serves the same policy.
    let dir = tempfile::tempdir().unwrap();
    policy.save(dir.path()).unwrap();
    assert_eq!(EgressPolicy::load(dir.path()), Some(policy));
}
