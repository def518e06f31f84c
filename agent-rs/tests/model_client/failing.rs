//! Failures that end the turn at once, and keeping the API key out of every message.

use agent_rs::model::{ModelClient, ModelError, ModelSettings};
use secrecy::SecretString;
use serde_json::json;

use super::server::{API_KEY, Reply, TestServer, status, test_settings};
use super::{complete, retries};

#[tokio::test]
async fn unauthorized_fails_at_once_without_retry() {
    let server = TestServer::start(vec![status(
        401,
        json!({"error": {"message": "Invalid token", "type": "invalid_request_error"}}),
    )])
    .await;

    let (result, events) = complete(&server.client()).await;

    match result {
        Err(ModelError::Auth { status, message }) => {
            assert_eq!(status, 401);
            assert!(message.contains("Invalid token"), "{message}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    assert_eq!(server.request_count(), 1);
    assert!(events.is_empty());
}

#[tokio::test]
async fn forbidden_is_an_auth_error_too() {
    let server = TestServer::start(vec![status(403, json!({"error": "forbidden"}))]).await;
    let error = complete(&server.client()).await.0.unwrap_err();
    assert!(
        matches!(error, ModelError::Auth { status: 403, .. }),
        "{error:?}"
    );
    assert_eq!(error.reason(), "model_auth_failed");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn connection_refused_on_every_attempt_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = ModelClient::new(test_settings(&format!("http://{addr}/v1"))).unwrap();

    let (result, events) = complete(&client).await;

    match result {
        Err(ModelError::Unreachable {
            attempts, message, ..
        }) => {
            assert_eq!(attempts, 4);
            assert!(message.to_lowercase().contains("connect"), "{message}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(retries(&events).len(), 3);
}

#[tokio::test]
async fn context_length_rejection_is_reported_as_such_without_retry() {
    let server = TestServer::start(vec![status(
        400,
        json!({"error": {
            "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"
        }}),
    )])
    .await;

    let error = complete(&server.client()).await.0.unwrap_err();

    assert!(
        matches!(&error, ModelError::ContextLengthExceeded { message } if message.contains("8192")),
        "{error:?}"
    );
    assert_eq!(error.reason(), "context_length_exceeded");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn other_client_errors_are_bad_requests_without_retry() {
    let server = TestServer::start(vec![status(
        404,
        json!({"error": {"message": "The model `nope` does not exist", "code": "model_not_found"}}),
    )])
    .await;

    let error = complete(&server.client()).await.0.unwrap_err();

    assert!(
        matches!(&error, ModelError::BadRequest { status: 404, message } if message.contains("does not exist")),
        "{error:?}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_json_answer_to_a_streaming_request_is_an_invalid_response_without_retry() {
    let server = TestServer::start(vec![Reply::Json(json!({
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]
    }))])
    .await;

    let error = complete(&server.client()).await.0.unwrap_err();

    assert!(
        matches!(&error, ModelError::InvalidResponse { message } if message.contains("application/json")),
        "{error:?}"
    );
    assert_eq!(error.reason(), "model_invalid_response");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn api_key_echoed_by_the_server_is_redacted_from_errors() {
    let server = TestServer::start(vec![Reply::EchoAuthorization(401)]).await;
    let error = complete(&server.client()).await.0.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("Incorrect API key provided"), "{shown}");
    assert!(!shown.contains(API_KEY), "{shown}");
}

#[tokio::test]
async fn api_key_echoed_in_retried_failures_is_redacted_from_events_and_errors() {
    let server = TestServer::start(vec![Reply::EchoAuthorization(503)]).await;
    let (result, events) = complete(&server.client()).await;
    let error = result.unwrap_err();
    let shown = format!("{error} {error:?} {events:?}");
    assert!(matches!(error, ModelError::RetriesExhausted { .. }));
    assert!(!shown.contains(API_KEY), "{shown}");
}

#[tokio::test]
async fn api_key_is_hidden_from_debug_output_of_settings_and_client() {
    let settings = test_settings("http://127.0.0.1:9/v1");
    let client = ModelClient::new(settings.clone()).unwrap();
    let shown = format!("{settings:?} {client:?}");
    assert!(!shown.contains(API_KEY), "{shown}");
}

#[test]
fn settings_that_cannot_work_are_rejected() {
    let reject = |settings: ModelSettings| ModelClient::new(settings).unwrap_err();
    assert!(matches!(
        reject(test_settings("not a url")),
        ModelError::Config { .. }
    ));
    assert!(matches!(
        reject(test_settings("ftp://host/v1")),
        ModelError::Config { .. }
    ));
    assert!(matches!(
        reject(ModelSettings::new("http://127.0.0.1:1/v1", " ")),
        ModelError::Config { .. }
    ));
    let bad_key = reject(ModelSettings {
        api_key: Some(SecretString::from("sk-with\nnewline-secret")),
        ..test_settings("http://127.0.0.1:1/v1")
    });
    assert!(matches!(bad_key, ModelError::Config { .. }));
    assert!(!format!("{bad_key} {bad_key:?}").contains("newline-secret"));
}
