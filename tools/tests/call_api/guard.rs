//! The SSRF guard on the first request: refused literals, names and schemes, and the
//! allow list letting hosts through.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn loopback_literal_is_refused_without_any_request() {
    let server = serve().await;
    let message = rejection(call(&[], json!({"method": "GET", "url": server.url("/echo")})).await);
    assert_eq!(
        message,
        "refused: `127.0.0.1` is a loopback address; add it to tools.call_api.allow_hosts to allow it"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn private_link_local_and_mapped_literals_are_refused_before_connecting() {
    for (url, reason) in [
        ("http://10.0.0.1/", "a private-network address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "a cloud metadata service address",
        ),
        (
            "http://[fd00:ec2::254]/",
            "a cloud metadata service address",
        ),
        ("http://[::1]:9/", "a loopback address"),
        ("http://[::ffff:127.0.0.1]:9/", "a loopback address"),
        ("http://192.168.1.1/", "a private-network address"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://0.0.0.0:9/", "unspecified"),
    ] {
        let message = rejection(
            call(
                &[],
                json!({"method": "GET", "url": url, "timeout_seconds": 30}),
            )
            .await,
        );
        assert!(message.starts_with("refused: `"), "{url}: {message}");
        assert!(message.contains(reason), "{url}: {message}");
    }
}

#[tokio::test]
async fn metadata_host_name_is_refused() {
    let message = rejection(
        call(
            &[],
            json!({"method": "GET", "url": "http://metadata.google.internal/computeMetadata/v1/"}),
        )
        .await,
    );
    assert!(message.contains("cloud metadata service name"), "{message}");
}

#[tokio::test]
async fn name_resolving_to_loopback_is_refused_without_any_request() {
    let server = serve().await;
    let message = rejection(
        call(
            &["127.0.0.1"],
            json!({"method": "GET", "url": server.localhost_url("/echo")}),
        )
        .await,
    );
    assert!(
        message.starts_with("refused: `localhost` resolves to "),
        "{message}"
    );
    assert!(message.contains("loopback"), "{message}");
    assert!(
        message.contains("add `localhost` to tools.call_api.allow_hosts"),
        "{message}"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn name_allowed_with_its_port_is_reached() {
    let server = serve().await;
    let allowed = format!("localhost:{}", server.port());
    let output = call(
        &[&allowed],
        json!({"method": "GET", "url": server.localhost_url("/echo")}),
    )
    .await
    .unwrap();
    assert!(output.success);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn name_allowed_on_another_port_is_refused() {
    let server = serve().await;
    let message = rejection(
        call(
            &["localhost:1"],
            json!({"method": "GET", "url": server.localhost_url("/echo")}),
        )
        .await,
    );
    assert!(
        message.starts_with("refused: `localhost` resolves to "),
        "{message}"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn non_http_schemes_are_refused() {
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/file",
        "gopher://example.com/",
    ] {
        let message = rejection(call(&[], json!({"method": "GET", "url": url})).await);
        assert!(
            message.contains("only http and https URLs can be called"),
            "{url}: {message}"
        );
    }
}
