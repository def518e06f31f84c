//! Redirects: every hop is checked again, and methods, bodies and credentials follow
//! the status's rules.

use serde_json::json;
use tools::config::CallApiConfig;

use crate::support::*;

#[tokio::test]
async fn redirect_from_allowed_host_to_loopback_literal_is_refused() {
    let allowed = serve().await;
    let target = serve().await;
    let allow = format!("localhost:{}", allowed.port());
    let url = allowed.localhost_url(&format!("/redirect/302?to={}", target.url("/echo")));
    let message = rejection(call(&[&allow], json!({"method": "GET", "url": url})).await);
    assert_eq!(
        message,
        "following a redirect: refused: `127.0.0.1` is a loopback address; add it to \
         tools.call_api.allow_hosts to allow it"
    );
    assert_eq!(allowed.hits(), 1);
    assert_eq!(target.hits(), 0);
}

#[tokio::test]
async fn redirect_to_a_name_resolving_to_loopback_is_refused() {
    let allowed = serve().await;
    let target = serve().await;
    let allow = format!("127.0.0.1:{}", allowed.port());
    let url = allowed.url(&format!(
        "/redirect/307?to={}",
        target.localhost_url("/echo")
    ));
    let message = rejection(call(&[&allow], json!({"method": "GET", "url": url})).await);
    assert!(
        message.starts_with("following a redirect: refused: `localhost` resolves to "),
        "{message}"
    );
    assert_eq!(target.hits(), 0);
}

#[tokio::test]
async fn redirect_to_a_non_http_scheme_is_refused() {
    let server = serve().await;
    let url = server.url("/redirect/302?to=file:///etc/passwd");
    let message = rejection(call(&["127.0.0.1"], json!({"method": "GET", "url": url})).await);
    assert!(
        message.starts_with("following a redirect: refused: `file:` URLs"),
        "{message}"
    );
}

#[tokio::test]
async fn see_other_turns_post_into_get_without_body() {
    let server = serve().await;
    let url = server.url("/redirect/303?to=/echo");
    let output = call(
        &["127.0.0.1"],
        json!({"method": "POST", "url": url, "body": {"k": 1}}),
    )
    .await
    .unwrap();
    assert!(
        output.content.contains("(after 1 redirect; final URL: "),
        "{}",
        output.content
    );
    let echo = echoed(&output);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["body"], "");
    assert!(echo["headers"].get("content-type").is_none());
}

#[tokio::test]
async fn temporary_redirect_keeps_method_and_body_and_resolves_relative_location() {
    let server = serve().await;
    let url = server.url("/redirect/307?to=..%2Fecho%3Ffrom%3Dredirect");
    let output = call(
        &["127.0.0.1"],
        json!({"method": "PATCH", "url": url, "body": "payload"}),
    )
    .await
    .unwrap();
    let echo = echoed(&output);
    assert_eq!(echo["method"], "PATCH");
    assert_eq!(echo["body"], "payload");
    assert_eq!(echo["path"], "/echo");
    assert_eq!(echo["query"], "from=redirect");
    assert_eq!(output.details["redirects"], 1);
}

#[tokio::test]
async fn credentials_are_dropped_on_a_redirect_to_another_origin() {
    let server = serve().await;
    let url = server.url(&format!(
        "/redirect/307?to={}",
        server.localhost_url("/echo")
    ));
    let output = call(
        &["127.0.0.1", "localhost"],
        json!({"method": "GET", "url": url, "headers": {"Authorization": "Bearer s3cret", "X-Keep": "1"}}),
    )
    .await
    .unwrap();
    let echo = echoed(&output);
    assert!(echo["headers"].get("authorization").is_none(), "{echo}");
    assert_eq!(echo["headers"]["x-keep"], "1");
}

#[tokio::test]
async fn redirects_beyond_the_limit_are_refused() {
    let server = serve().await;
    let config = CallApiConfig {
        max_redirects: 2,
        ..config(&["127.0.0.1"])
    };
    let message = rejection(
        call_with(
            &config,
            json!({"method": "GET", "url": server.url("/loop/0")}),
        )
        .await,
    );
    assert!(
        message.starts_with("stopped after following 2 redirects"),
        "{message}"
    );
    assert_eq!(server.hits(), 3);
}
