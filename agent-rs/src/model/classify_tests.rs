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
    let fault = StreamFault::ServerError(
        json!({"error": {"message": "engine died", "type": "server_error"}}),
    );
    let failure = classify_stream_fault(fault, &sanitizer());
    assert!(
        matches!(&failure, AttemptFailure::Transient { reason, .. } if reason.contains("engine died")),
        "{failure:?}"
    );
}

#[test]
fn an_error_value_without_its_wrapper_is_read_the_same() {
    let fault = StreamFault::ServerError(json!({"code": 400, "message": "Token limit reached"}));
    let failure = classify_stream_fault(fault, &sanitizer());
    assert!(
        matches!(&failure, AttemptFailure::Transient { reason, .. } if reason.contains("Token limit reached")),
        "{failure:?}"
    );
}

#[test]
fn a_context_length_error_in_the_stream_is_reported_as_such() {
    let fault =
        StreamFault::ServerError(json!({"error": {"message": "maximum context length exceeded"}}));
    let error = permanent(classify_stream_fault(fault, &sanitizer()));
    assert!(matches!(error, ModelError::ContextLengthExceeded { .. }));
}

#[test]
fn refused_credentials_in_the_stream_are_an_auth_error() {
    let fault = StreamFault::ServerError(json!({"error": {"message": "key revoked", "code": 401}}));
    let error = permanent(classify_stream_fault(fault, &sanitizer()));
    assert!(
        matches!(error, ModelError::Auth { status: 401, .. }),
        "{error:?}"
    );
}

#[test]
fn a_chunk_that_is_not_json_is_an_invalid_response() {
    let decode_error = serde_json::from_str::<u8>("x").unwrap_err();
    let error = permanent(undecodable_chunk(
        &decode_error,
        "<html>nope</html>",
        &sanitizer(),
    ));
    assert!(
        matches!(&error, ModelError::InvalidResponse { message } if message.contains("nope")),
        "{error:?}"
    );
}

#[test]
fn a_broken_stream_is_transient() {
    let error = sse_stream::Error::Body(Box::new(std::io::Error::other("unexpected EOF")));
    let failure = classify_stream_error(&error, &sanitizer());
    assert!(
        matches!(&failure, AttemptFailure::Transient { reason, connect: false, .. } if reason.contains("broke off") && reason.contains("unexpected EOF")),
        "{failure:?}"
    );
}

#[test]
fn a_finish_reason_meaning_the_server_gave_up_is_transient() {
    let failure = classify_stream_fault(
        StreamFault::Abandoned("insufficient_system_resource".into()),
        &sanitizer(),
    );
    assert!(
        matches!(&failure, AttemptFailure::Transient { reason, .. } if reason.contains("insufficient_system_resource")),
        "{failure:?}"
    );
}

#[test]
fn only_a_bad_request_that_names_the_schemas_blames_them() {
    assert!(blames_tool_schemas(
        400,
        "Invalid JSON payload received. Unknown name \"additionalProperties\" at 'tools[0].function.parameters'"
    ));
    assert!(blames_tool_schemas(
        400,
        "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties[x].format: only 'enum' and 'date-time' are supported"
    ));
    assert!(blames_tool_schemas(
        422,
        "invalid JSON schema for tool read_file"
    ));
    assert!(!blames_tool_schemas(400, "The model `nope` does not exist"));
    assert!(!blames_tool_schemas(500, "schema registry down"));
}
