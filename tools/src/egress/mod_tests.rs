#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener, UnixStream};

use super::*;

/// An upstream answering every request with `hello from upstream`; its port.
async fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\nhello from upstream")
                    .await;
            });
        }
    });
    port
}

async fn ask(socket: &Path, request: &str) -> String {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

fn proxy(dir: &Path, hosts: &[&str], pinned: &[(&str, &str)]) -> std::path::PathBuf {
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let pinned: BTreeMap<String, std::net::IpAddr> = pinned
        .iter()
        .map(|(name, ip)| (name.to_string(), ip.parse().unwrap()))
        .collect();
    let socket = dir.join(SOCKET);
    let listener = UnixListener::bind(&socket).unwrap();
    serve(
        listener,
        Arc::new(HostAllowList::new(&hosts, &pinned).unwrap()),
    );
    socket
}

#[tokio::test]
async fn a_listed_pinned_host_is_reached_and_others_get_403_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let port = upstream().await;
    let socket = proxy(dir.path(), &["svc.test"], &[("svc.test", "127.0.0.1")]);

    let allowed = ask(
        &socket,
        &format!("GET http://svc.test:{port}/x HTTP/1.1\r\nHost: svc.test\r\n\r\n"),
    )
    .await;
    assert!(allowed.ends_with("hello from upstream"), "{allowed}");

    let tunnel = ask(
        &socket,
        &format!("CONNECT svc.test:{port} HTTP/1.1\r\n\r\n"),
    )
    .await;
    assert!(tunnel.starts_with("HTTP/1.1 200"), "{tunnel}");

    let other = ask(
        &socket,
        &format!("GET http://other.test:{port}/ HTTP/1.1\r\n\r\n"),
    )
    .await;
    assert!(other.starts_with("HTTP/1.1 403"), "{other}");
    assert!(
        other.contains("only the hosts this run allows (svc.test)"),
        "{other}"
    );
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_even_when_listed() {
    let dir = tempfile::tempdir().unwrap();
    let port = upstream().await;
    let socket = proxy(
        dir.path(),
        &["localhost", "169.254.169.254", "10.1.2.3:80"],
        &[],
    );

    let by_name = ask(
        &socket,
        &format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n"),
    )
    .await;
    assert!(by_name.starts_with("HTTP/1.1 403"), "{by_name}");
    assert!(by_name.contains("a loopback address"), "{by_name}");

    let metadata = ask(
        &socket,
        "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n\r\n",
    )
    .await;
    assert!(metadata.starts_with("HTTP/1.1 403"), "{metadata}");
    assert!(metadata.contains("metadata"), "{metadata}");

    let private = ask(&socket, "CONNECT 10.1.2.3:80 HTTP/1.1\r\n\r\n").await;
    assert!(private.contains("a private-network address"), "{private}");
}

#[tokio::test]
async fn a_port_named_in_an_entry_is_the_only_one_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let socket = proxy(dir.path(), &["svc.test:443"], &[("svc.test", "127.0.0.1")]);
    let other_port = ask(&socket, "CONNECT svc.test:22 HTTP/1.1\r\n\r\n").await;
    assert!(other_port.starts_with("HTTP/1.1 403"), "{other_port}");
    assert!(
        other_port.contains("svc.test:22 is not one of them"),
        "{other_port}"
    );
}

#[tokio::test]
async fn the_relay_carries_a_command_to_the_proxy_and_returns_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join(SOCKET);
    let listener = UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.unwrap();
        stream
            .write_all(&buf.map(|b| b.to_ascii_uppercase()))
            .await
            .unwrap();
    });
    let address = relay::start(socket.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"PING");

    let code = relay::run_command_behind(
        socket,
        "127.0.0.1:0".parse().unwrap(),
        &["sh".into(), "-c".into(), "exit 7".into()],
    )
    .await
    .unwrap();
    assert_eq!(code, 7);
}

#[tokio::test]
async fn through_an_upstream_proxy_allowed_requests_chain_and_its_refusals_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = upstream().await;
    // The upstream (a runner's proxy): svc.test pinned, localhost resolved and refused.
    let outer_dir = dir.path().join("outer");
    std::fs::create_dir(&outer_dir).unwrap();
    let outer = proxy(
        &outer_dir,
        &["svc.test", "localhost"],
        &[("svc.test", "127.0.0.1")],
    );
    // This process's proxy, with no network of its own: no DNS, everything goes on.
    let inner = dir.path().join("inner.sock");
    let hosts: Vec<String> = ["svc.test", "localhost", "10.1.2.3:80"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    serve(
        UnixListener::bind(&inner).unwrap(),
        Arc::new(
            HostAllowList::new(&hosts, &BTreeMap::new())
                .unwrap()
                .through(Some(outer)),
        ),
    );

    let plain = ask(
        &inner,
        &format!("GET http://svc.test:{port}/x HTTP/1.1\r\nHost: svc.test\r\n\r\n"),
    )
    .await;
    assert!(plain.ends_with("hello from upstream"), "{plain}");

    let tunnel = ask(&inner, &format!("CONNECT svc.test:{port} HTTP/1.1\r\n\r\n")).await;
    assert!(tunnel.starts_with("HTTP/1.1 200"), "{tunnel}");
    assert!(tunnel.ends_with("hello from upstream"), "{tunnel}");

    // Allowed here, refused upstream: its status and reason reach the client.
    for request in [
        format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n"),
        format!("GET http://localhost:{port}/ HTTP/1.1\r\n\r\n"),
    ] {
        let refused = ask(&inner, &request).await;
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        assert!(refused.contains("a loopback address"), "{refused}");
    }

    // Refused here: not listed, or an address literal no DNS is needed to judge.
    let other = ask(&inner, "CONNECT other.test:443 HTTP/1.1\r\n\r\n").await;
    assert!(other.contains("is not one of them"), "{other}");
    let private = ask(&inner, "CONNECT 10.1.2.3:80 HTTP/1.1\r\n\r\n").await;
    assert!(private.starts_with("HTTP/1.1 403"), "{private}");
    assert!(private.contains("a private-network address"), "{private}");
}
