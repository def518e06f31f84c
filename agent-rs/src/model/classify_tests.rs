use std::time::Duration;

use serde_json::json;

use super::*;

fn sanitizer() -> Sanitizer {
    Sanitizer::new(["sk-secret-key-123".to_string()])
}

fn classify(status: u16, body: &str) -> AttemptFailure {
    classify_status(status, None, body, &sanitizer())
}

fn permanent(failure: AttemptFailure) -> ModelError {
    match failure {
        AttemptFailure::Permanent(error) => error,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[test]
fn rate_limits_server_errors_and_request_timeouts_are_transient() {
    for status in [408, 429, 500, 502, 503, 504] {
        assert!(
            matches!(
                classify(status, "busy"),
                AttemptFailure::Transient { connect: false, .. }
            ),
            "{status}"
        );
    }
}

#[test]
fn retry_after_is_carried_with_a_transient_status() {
    let failure = classify_status(429, Some(Duration::from_secs(3)), "", &sanitizer());
    assert!(matches!(
        failure,
        AttemptFailure::Transient { retry_after: Some(wait), .. } if wait == Duration::from_secs(3)
    ));
}

#[test]
fn exhausted_quota_is_not_retried_although_it_is_a_429() {
    let body = json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}});
    let error = permanent(classify(429, &body.to_string()));
    assert!(matches!(error, ModelError::BadRequest { status: 429, .. }));
}

#[test]
fn unauthorized_and_forbidden_are_auth_errors() {
    for status in [401, 403] {
        let error = permanent(classify(status, "{}"));
        assert!(matches!(error, ModelError::Auth { status: s, .. } if s == status));
    }
}

#[test]
fn context_length_is_recognised_across_server_wordings() {
    let bodies = [
        // OpenAI
        json!({"error": {"message": "too long", "code": "context_length_exceeded"}}),
        // vLLM (newer, wrapped) and DeepSeek
        json!({"error": {"message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens."}}),
        // vLLM (older, flat)
        json!({"object": "error", "message": "This model's maximum context length is 2048 tokens.", "type": "BadRequestError", "code": 400}),
        // llama.cpp
        json!({"error": {"message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error"}}),
        // proxies that flatten the error to a string
        json!({"error": "prompt is too long: 210000 tokens > 200000 maximum"}),
    ];
    for body in bodies {
        let error = permanent(classify(400, &body.to_string()));
        assert!(
            matches!(error, ModelError::ContextLengthExceeded { .. }),
            "{body} -> {error:?}"
        );
    }
    let too_large = permanent(classify(413, "input exceeds the context window"));
    assert!(matches!(
        too_large,
        ModelError::ContextLengthExceeded { .. }
    ));
}

#[test]
fn other_client_errors_are_bad_requests_with_the_server_message() {
    let body =
        json!({"error": {"message": "Unknown parameter: 'foo'", "type": "invalid_request_error"}});
    let error = permanent(classify(400, &body.to_string()));
    assert!(
        matches!(&error, ModelError::BadRequest { status: 400, message } if message == "Unknown parameter: 'foo'"),
        "{error:?}"
    );
}

#[test]
fn a_plain_text_body_is_kept_as_the_message() {
    let error = permanent(classify(404, "404 page not found\n"));
    assert!(
        matches!(&error, ModelError::BadRequest { message, .. } if message == "404 page not found")
    );
    let empty = permanent(classify(404, ""));
    assert!(matches!(&empty, ModelError::BadRequest { message, .. } if message.contains("empty")));
}

#[test]
fn the_api_key_is_redacted_and_long_bodies_are_cut() {
    let body = format!("bad key sk-secret-key-123 {}", "x".repeat(10_000));
    let error = permanent(classify(401, &body));
    let ModelError::Auth { message, .. } = error else {
        panic!("expected Auth");
    };
    assert!(!message.contains("sk-secret-key-123"));
    assert!(message.contains("[REDACTED]"));
    assert!(message.len() < 2_200, "{}", message.len());
}

#[test]
fn an_error_object_in_the_stream_is_a_transient_server_error() {
    let content = json!({"error": {"message": "engine died", "type": "server_error"}}).to_string();
    let decode_error = serde_json::from_str::<u8>("x").unwrap_err();
    let failure = classify_openai_error(
        OpenAIError::JSONDeserialize(decode_error, content),
        &sanitizer(),
    );
    assert!(
        matches!(&failure, AttemptFailure::Transient { reason, .. } if reason.contains("engine died"))
    );
}

#[test]
fn a_context_length_error_in_the_stream_is_reported_as_such() {
    let content = json!({"error": {"message": "maximum context length exceeded"}}).to_string();
    let decode_error = serde_json::from_str::<u8>("x").unwrap_err();
    let error = permanent(classify_openai_error(
        OpenAIError::JSONDeserialize(decode_error, content),
        &sanitizer(),
    ));
    assert!(matches!(error, ModelError::ContextLengthExceeded { .. }));
}

#[test]
fn a_chunk_that_is_neither_chunk_nor_error_is_an_invalid_response() {
    let decode_error = serde_json::from_str::<u8>("x").unwrap_err();
    let error = permanent(classify_openai_error(
        OpenAIError::JSONDeserialize(decode_error, r#"{"choices": "nope"}"#.into()),
        &sanitizer(),
    ));
    assert!(
        matches!(&error, ModelError::InvalidResponse { message } if message.contains("nope")),
        "{error:?}"
    );
}

#[test]
fn a_broken_stream_is_transient() {
    let failure = classify_openai_error(
        OpenAIError::StreamError(Box::new(async_openai::error::StreamError::EventStream(
            "unexpected EOF".into(),
        ))),
        &sanitizer(),
    );
    assert!(
        matches!(&failure, AttemptFailure::Transient { reason, connect: false, .. } if reason.contains("broke off"))
    );
}

#[test]
fn an_unknown_finish_reason_is_a_transient_server_give_up() {
    let content = json!({
        "id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "insufficient_system_resource"}]
    })
    .to_string();
    let decode_error = serde_json::from_str::<
        async_openai::types::chat::CreateChatCompletionStreamResponse,
    >(&content)
    .unwrap_err();
    let failure = classify_openai_error(
        OpenAIError::JSONDeserialize(decode_error, content),
        &sanitizer(),
    );
    assert!(
        matches!(&failure, AttemptFailure::Transient { reason, .. } if reason.contains("insufficient_system_resource")),
        "{failure:?}"
    );
}
