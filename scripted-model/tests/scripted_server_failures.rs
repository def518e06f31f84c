//! The scripted server's failure steps over real HTTP (errors, broken connections,
//! delays, an exhausted script) and how it treats requests it cannot serve.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_openai::error::WrappedError;
use async_openai::types::chat::CreateChatCompletionResponse;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{assemble, chat_request, client, post_chat, read_sse, serve};

#[tokio::test]
async fn rate_limit_step_answers_429_with_retry_after_and_an_openai_error() {
    let server = serve(json!({"steps": [
        {"type": "error", "status": 429, "retry_after_secs": 3}
    ]}))
    .await;
    let response = post_chat(&server.base_url(), &chat_request(true)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "3");
    let error: WrappedError = response.json().await.unwrap();
    assert_eq!(error.error.r#type.as_deref(), Some("rate_limit_error"));
    assert_eq!(error.error.code.as_deref(), Some("rate_limit_exceeded"));
    assert!(!error.error.message.is_empty());
}

#[tokio::test]
async fn server_and_auth_error_steps_answer_their_status() {
    let server = serve(json!({"steps": [
        {"type": "error", "status": 500},
        {"type": "error", "status": 401, "message": "bad key"},
        {"type": "error", "status": 503}
    ]}))
    .await;
    let url = server.base_url();

    let response = post_chat(&url, &chat_request(false)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("retry-after").is_none());
    let error: WrappedError = response.json().await.unwrap();
    assert_eq!(error.error.r#type.as_deref(), Some("server_error"));

    let response = post_chat(&url, &chat_request(false)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: WrappedError = response.json().await.unwrap();
    assert_eq!(error.error.message, "bad key");
    assert_eq!(error.error.code.as_deref(), Some("invalid_api_key"));

    let response = post_chat(&url, &chat_request(false)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn error_step_with_a_string_body_sends_it_as_plain_text() {
    let server = serve(json!({"steps": [
        {"type": "error", "status": 502, "body": "<html>Bad Gateway</html>"},
        {"type": "error", "status": 400, "body": {"detail": "custom"}}
    ]}))
    .await;
    let response = post_chat(&server.base_url(), &chat_request(false)).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(response.text().await.unwrap(), "<html>Bad Gateway</html>");

    let response = post_chat(&server.base_url(), &chat_request(false)).await;
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "custom"})
    );
}

#[tokio::test]
async fn cut_stream_delivers_a_partial_answer_then_fails_without_done() {
    let server = serve(json!({"steps": [{"type": "cut_stream", "content": "I will now"}]})).await;
    let response = post_chat(&server.base_url(), &chat_request(true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let read = read_sse(response).await;

    assert!(read.end.is_err(), "the body should fail, it ended cleanly");
    assert!(!read.saw_done());
    let assembled = assemble(&read.chunks());
    assert!(assembled.role_seen);
    assert_eq!(assembled.content, "I will now");
    assert_eq!(assembled.finish_reason, None);
}

#[tokio::test]
async fn cut_stream_without_streaming_truncates_the_body() {
    let server = serve(json!({"steps": [{"type": "cut_stream"}]})).await;
    let response = post_chat(&server.base_url(), &chat_request(false)).await;
    assert!(
        response
            .json::<CreateChatCompletionResponse>()
            .await
            .is_err()
    );
    assert_eq!(server.steps_consumed(), 1);
}

#[tokio::test]
async fn exhausted_script_answers_500_naming_the_step_count() {
    let server = serve(json!({"steps": [{"type": "message", "content": "only"}]})).await;
    let url = server.base_url();
    assert_eq!(
        post_chat(&url, &chat_request(false)).await.status(),
        StatusCode::OK
    );

    let response = post_chat(&url, &chat_request(false)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let error: WrappedError = response.json().await.unwrap();
    assert!(
        error
            .error
            .message
            .contains("script exhausted after 1 steps"),
        "{}",
        error.error.message
    );
    assert_eq!(server.steps_consumed(), 1);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.requests()[1].step, None);
}

#[tokio::test]
async fn request_without_messages_is_refused_and_consumes_no_step() {
    let server = serve(json!({"steps": [{"type": "message", "content": "a"}]})).await;
    let response = post_chat(&server.base_url(), &json!({"model": "scripted"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: WrappedError = response.json().await.unwrap();
    assert!(
        error.error.message.contains("messages"),
        "{}",
        error.error.message
    );

    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.steps_consumed(), 0);
    assert_eq!(server.requests()[1].body, json!("not json"));

    let response = post_chat(&server.base_url(), &chat_request(false)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_path_answers_404_and_is_recorded() {
    let server = serve(json!({"steps": []})).await;
    let response = client()
        .post(format!("{}/responses", server.base_url()))
        .json(&json!({"input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let error: WrappedError = response.json().await.unwrap();
    assert!(
        error.error.message.contains("/v1/responses"),
        "{}",
        error.error.message
    );
    assert_eq!(server.requests()[0].path, "/v1/responses");
}

#[tokio::test]
async fn delay_step_consumes_its_step_even_when_the_client_gives_up() {
    let server = serve(json!({"steps": [
        {"type": "delay", "ms": 30000, "then": {"type": "message", "content": "too late"}},
        {"type": "message", "content": "on time"}
    ]}))
    .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    let error = impatient
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&chat_request(false))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(server.steps_consumed(), 1);

    let answer: CreateChatCompletionResponse = post_chat(&server.base_url(), &chat_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer.choices[0].message.content.as_deref(),
        Some("on time")
    );
}

#[tokio::test]
async fn delay_step_answers_with_its_inner_step() {
    let server = serve(json!({"steps": [
        {"type": "delay", "ms": 1, "then": {"type": "error", "status": 429, "retry_after_secs": 1}}
    ]}))
    .await;
    let response = post_chat(&server.base_url(), &chat_request(false)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
