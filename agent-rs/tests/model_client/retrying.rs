//! Transient failures: rate limits, server errors and broken streams are retried within
//! the budget.

use std::time::Duration;

use agent_rs::model::{ModelClient, ModelError, ModelEvent, ModelSettings};
use serde_json::json;

use super::server::{Ending, Reply, TestServer, chunk, text_answer};
use super::{complete, request, retries};

#[tokio::test]
async fn rate_limit_with_retry_after_is_waited_out_then_succeeds() {
    let server = TestServer::start(vec![
        Reply::Status {
            status: 429,
            retry_after: Some("1"),
            body: json!({"error": {"message": "Rate limit reached", "type": "requests"}})
                .to_string(),
        },
        text_answer("after the wait"),
    ])
    .await;

    let (result, events) = complete(&server.client()).await;
    let response = result.unwrap();

    assert_eq!(response.attempts, 2);
    assert_eq!(response.content.as_deref(), Some("after the wait"));
    let retries = retries(&events);
    assert_eq!(retries.len(), 1, "{events:?}");
    let (attempt, reason, wait) = &retries[0];
    assert_eq!(*attempt, 2);
    assert_eq!(*wait, Duration::from_secs(1));
    assert!(
        reason.contains("429") && reason.contains("Rate limit reached"),
        "{reason}"
    );
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn server_errors_beyond_max_retries_exhaust_the_retries() {
    let server = TestServer::start(vec![Reply::Status {
        status: 500,
        retry_after: None,
        body: "upstream exploded".into(),
    }])
    .await;

    let (result, events) = complete(&server.client()).await;
    let error = result.unwrap_err();

    match &error {
        ModelError::RetriesExhausted {
            attempts,
            last_error,
        } => {
            assert_eq!(*attempts, 4);
            assert!(last_error.contains("500") && last_error.contains("upstream exploded"));
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert_eq!(error.reason(), "model_retries_exhausted");
    assert_eq!(server.request_count(), 4);
    let attempts: Vec<u32> = retries(&events).iter().map(|r| r.0).collect();
    assert_eq!(attempts, vec![2, 3, 4]);
}

#[tokio::test]
async fn retry_stops_when_the_elapsed_budget_is_spent() {
    let server = TestServer::start(vec![Reply::Status {
        status: 503,
        retry_after: Some("1"),
        body: "busy".into(),
    }])
    .await;
    let client = ModelClient::new(ModelSettings {
        max_retries: 100,
        max_retry_elapsed: Duration::from_millis(1500),
        ..server.settings()
    })
    .unwrap();

    let (result, _) = complete(&client).await;

    // Waits of 1 s, then the 0.5 s left, then nothing: three requests in all.
    assert!(matches!(
        result,
        Err(ModelError::RetriesExhausted { attempts: 3, .. })
    ));
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn stream_cut_mid_way_is_retried_from_scratch() {
    let server = TestServer::start(vec![
        Reply::Sse {
            events: vec![chunk(json!({"content": "partial"}), None)],
            ending: Ending::Abort,
        },
        text_answer("whole answer"),
    ])
    .await;

    let cut = server.script.cut.clone();
    let mut events = Vec::new();
    let result = server
        .client()
        .complete(&request(), &mut |event| {
            if matches!(&event, ModelEvent::ContentDelta(text) if text == "partial") {
                cut.notify_one();
            }
            events.push(event);
        })
        .await;
    let response = result.unwrap();

    assert_eq!(response.content.as_deref(), Some("whole answer"));
    assert_eq!(response.attempts, 2);
    assert!(
        matches!(
            events.as_slice(),
            [
                ModelEvent::ContentDelta(first),
                ModelEvent::Retrying { attempt: 2, reason, .. },
                ModelEvent::ContentDelta(second),
            ] if first == "partial" && second == "whole answer" && reason.contains("broke off")
        ),
        "{events:?}"
    );
}

#[tokio::test]
async fn stream_ending_without_finish_reason_is_retried() {
    let server = TestServer::start(vec![
        Reply::Sse {
            events: vec![chunk(json!({"content": "trunc"}), None)],
            ending: Ending::Eof,
        },
        text_answer("complete"),
    ])
    .await;

    let (result, events) = complete(&server.client()).await;

    assert_eq!(result.unwrap().content.as_deref(), Some("complete"));
    let retries = retries(&events);
    assert_eq!(retries.len(), 1);
    assert!(retries[0].1.contains("finish_reason"), "{}", retries[0].1);
}

#[tokio::test]
async fn stalled_stream_hits_the_idle_timeout_and_is_retried() {
    let server = TestServer::start(vec![
        Reply::Sse {
            events: vec![chunk(json!({"content": "thinking..."}), None)],
            ending: Ending::Stall,
        },
        text_answer("done"),
    ])
    .await;
    let client = ModelClient::new(ModelSettings {
        request_timeout: Duration::from_millis(300),
        ..server.settings()
    })
    .unwrap();

    let (result, events) = complete(&client).await;

    assert_eq!(result.unwrap().content.as_deref(), Some("done"));
    let retries = retries(&events);
    assert_eq!(retries.len(), 1);
    assert!(retries[0].1.contains("stalled"), "{}", retries[0].1);
}

#[tokio::test]
async fn error_object_sent_mid_stream_is_retried() {
    let server = TestServer::start(vec![
        Reply::Sse {
            events: vec![
                chunk(json!({"content": "par"}), None),
                json!({"error": {"message": "engine overloaded", "type": "server_error"}})
                    .to_string(),
            ],
            ending: Ending::Done,
        },
        text_answer("fine"),
    ])
    .await;

    let (result, events) = complete(&server.client()).await;

    assert_eq!(result.unwrap().content.as_deref(), Some("fine"));
    assert!(retries(&events)[0].1.contains("engine overloaded"));
}
