//! Requests that go through: what is sent, what comes back, caps and timeouts, and
//! failures to connect or resolve.

use serde_json::{Value, json};
use tools::config::CallApiConfig;

use crate::support::*;

#[tokio::test]
async fn get_reaches_an_allowed_host_with_query_and_headers() {
    let server = serve().await;
    let output = call(
        &["127.0.0.1"],
        json!({"method": "GET", "url": server.url("/echo?x=1"), "headers": {"X-Test": "yes"}}),
    )
    .await
    .unwrap();
    assert!(output.success);
    assert!(
        output.content.starts_with("HTTP/1.1 200 OK\n"),
        "{}",
        output.content
    );
    assert!(output.content.contains("content-type: application/json"));
    let echo = echoed(&output);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["headers"]["x-test"], "yes");
    assert_eq!(output.details["status"], 200);
}

#[tokio::test]
async fn json_body_is_sent_as_json_with_its_content_type() {
    let server = serve().await;
    let output = call(
        &["127.0.0.1"],
        json!({"method": "post", "url": server.url("/echo"), "body": {"a": [1, 2]}}),
    )
    .await
    .unwrap();
    let echo = echoed(&output);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(echo["body"].as_str().unwrap()).unwrap(),
        json!({"a": [1, 2]})
    );
}

#[tokio::test]
async fn string_body_is_sent_verbatim_with_the_callers_content_type() {
    let server = serve().await;
    let output = call(
        &["127.0.0.1"],
        json!({
            "method": "PUT",
            "url": server.url("/echo"),
            "headers": {"Content-Type": "text/csv"},
            "body": "a,b\n1,2\n"
        }),
    )
    .await
    .unwrap();
    let echo = echoed(&output);
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["headers"]["content-type"], "text/csv");
    assert_eq!(echo["body"], "a,b\n1,2\n");
}

#[tokio::test]
async fn error_status_is_a_failed_call_that_still_shows_the_body() {
    let server = serve().await;
    let output = call(
        &["127.0.0.1"],
        json!({"method": "GET", "url": server.url("/status/404")}),
    )
    .await
    .unwrap();
    assert!(!output.success);
    assert!(output.content.starts_with("HTTP/1.1 404 Not Found"));
    assert!(output.content.ends_with("status 404"));
}

#[tokio::test]
async fn head_request_has_no_body() {
    let server = serve().await;
    let output = call(
        &["127.0.0.1"],
        json!({"method": "HEAD", "url": server.url("/sized")}),
    )
    .await
    .unwrap();
    assert!(output.success);
    assert!(output.content.contains("content-length: 50000"));
    assert!(output.content.ends_with("[empty body]"));
}

#[tokio::test]
async fn streamed_body_is_cut_at_the_cap_and_says_more_was_omitted() {
    let server = serve().await;
    let config = CallApiConfig {
        max_response_bytes: 10_000,
        ..config(&["127.0.0.1"])
    };
    let output = call_with(&config, json!({"method": "GET", "url": server.url("/big")}))
        .await
        .unwrap();
    let (_, body) = output.content.split_once("\n\n").unwrap();
    let (text, note) = body.rsplit_once('\n').unwrap();
    assert_eq!(text, "a".repeat(10_000));
    assert!(
        note.starts_with("[body cut at 10000 bytes; more omitted: at least "),
        "{note}"
    );
    assert_eq!(output.details["truncated"], true);
    assert_eq!(output.details["body_bytes"], 10_000);
}

#[tokio::test]
async fn body_of_declared_length_says_exactly_how_much_was_omitted() {
    let server = serve().await;
    let config = CallApiConfig {
        max_response_bytes: 10_000,
        ..config(&["127.0.0.1"])
    };
    let output = call_with(
        &config,
        json!({"method": "GET", "url": server.url("/sized")}),
    )
    .await
    .unwrap();
    assert!(
        output
            .content
            .ends_with("\n[body cut at 10000 bytes; 40000 more bytes omitted]"),
        "{}",
        &output.content[output.content.len() - 100..]
    );
}

#[tokio::test]
async fn binary_body_is_summarised() {
    let server = serve().await;
    let output = call(
        &["127.0.0.1"],
        json!({"method": "GET", "url": server.url("/png")}),
    )
    .await
    .unwrap();
    assert!(
        output
            .content
            .ends_with("[8 bytes of binary content (image/png)]")
    );
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    let server = serve().await;
    let message = rejection(
        call(
            &["127.0.0.1"],
            json!({"method": "GET", "url": server.url("/hang"), "timeout_seconds": 1}),
        )
        .await,
    );
    assert!(message.contains("timed out after 1 s"), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{}", server.port())),
        "{message}"
    );
}

#[tokio::test]
async fn closed_port_is_rejected_as_connection_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let message = rejection(
        call(
            &["127.0.0.1"],
            json!({"method": "GET", "url": format!("http://127.0.0.1:{port}/")}),
        )
        .await,
    );
    assert!(message.contains("could not connect"), "{message}");
}

#[tokio::test]
async fn unknown_host_name_is_rejected_as_resolution_failure() {
    let message = rejection(
        call(
            &[],
            json!({"method": "GET", "url": "http://no-such-host.invalid/"}),
        )
        .await,
    );
    assert!(
        message.contains("could not resolve `no-such-host.invalid`"),
        "{message}"
    );
}
