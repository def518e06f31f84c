use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}

#[test]
fn retry_after_in_seconds_is_read() {
    let now = at(1_000);
    assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
    assert_eq!(
        parse_retry_after(" 20 ", now),
        Some(Duration::from_secs(20))
    );
    assert_eq!(
        parse_retry_after("0.5", now),
        Some(Duration::from_millis(500))
    );
    assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
}

#[test]
fn retry_after_as_an_http_date_is_the_time_until_then() {
    // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
    let now = at(1_445_412_480 - 90);
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
        Some(Duration::from_secs(90))
    );
    let later = at(1_445_412_480 + 5);
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", later),
        Some(Duration::ZERO)
    );
}

#[test]
fn retry_after_that_is_not_a_delay_is_ignored() {
    for value in [
        "-1",
        "NaN",
        "inf",
        "soon",
        "",
        "Wed, 32 Oct 2015 07:28:00 GMT",
    ] {
        assert_eq!(parse_retry_after(value, at(0)), None, "{value}");
    }
}

#[test]
fn rate_limit_resets_in_go_durations_are_read() {
    assert_eq!(parse_reset("1s", at(0)), Some(Duration::from_secs(1)));
    assert_eq!(parse_reset("6m0s", at(0)), Some(Duration::from_secs(360)));
    assert_eq!(parse_reset("20ms", at(0)), Some(Duration::from_millis(20)));
    assert_eq!(
        parse_reset("2m59.56s", at(0)),
        Some(Duration::from_millis(179_560))
    );
    assert_eq!(parse_reset("1h", at(0)), Some(Duration::from_secs(3600)));
    assert_eq!(parse_reset("soon", at(0)), None);
    assert_eq!(parse_reset("5x", at(0)), None);
}

#[test]
fn rate_limit_resets_as_epoch_seconds_or_milliseconds_are_read() {
    let now = at(1_741_305_590);
    assert_eq!(
        parse_reset("1741305600", now),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        parse_reset("1741305600000", now),
        Some(Duration::from_secs(10))
    );
    assert_eq!(parse_reset("12", now), Some(Duration::from_secs(12)));
}

#[test]
fn the_reset_of_the_spent_limit_is_the_hint() {
    let spent_tokens = headers(&[
        ("x-ratelimit-remaining-requests", "99"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", "7.5s"),
    ]);
    assert_eq!(
        retry_hint(&spent_tokens, at(0)),
        Some(Duration::from_millis(7_500))
    );
    let spent_requests = headers(&[
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "2s"),
        ("x-ratelimit-remaining-tokens", "10"),
        ("x-ratelimit-reset-tokens", "30s"),
    ]);
    assert_eq!(
        retry_hint(&spent_requests, at(0)),
        Some(Duration::from_secs(2))
    );
    let unknown = headers(&[
        ("x-ratelimit-reset-requests", "2s"),
        ("x-ratelimit-reset-tokens", "3s"),
    ]);
    assert_eq!(retry_hint(&unknown, at(0)), Some(Duration::from_secs(3)));
}

#[test]
fn retry_after_wins_over_rate_limit_headers_and_ms_is_read() {
    let both = headers(&[("retry-after", "4"), ("x-ratelimit-reset-tokens", "30s")]);
    assert_eq!(retry_hint(&both, at(0)), Some(Duration::from_secs(4)));
    let millis = headers(&[("retry-after-ms", "1500")]);
    assert_eq!(
        retry_hint(&millis, at(0)),
        Some(Duration::from_millis(1_500))
    );
    assert_eq!(retry_hint(&HeaderMap::new(), at(0)), None);
}

#[test]
fn authorization_is_a_sensitive_bearer_header_only_when_a_key_is_set() {
    let key = SecretString::from("sk-abcdef-123456");
    let endpoint = Endpoint::new("http://h/v1/", Some(&key), Duration::from_secs(1)).unwrap();
    let value = endpoint.authorization().unwrap();
    assert_eq!(value.to_str().unwrap(), "Bearer sk-abcdef-123456");
    assert!(value.is_sensitive());
    assert!(!format!("{endpoint:?}").contains("sk-abcdef-123456"));

    let anonymous = Endpoint::new("http://h/v1", None, Duration::from_secs(1)).unwrap();
    assert!(anonymous.authorization().is_none());
}

#[test]
fn trailing_slash_of_the_base_url_does_not_double_up() {
    let endpoint = Endpoint::new("http://h/v1/", None, Duration::from_secs(1)).unwrap();
    assert_eq!(endpoint.url(), "http://h/v1/chat/completions");
}

#[test]
fn a_base_url_that_is_no_url_is_refused_at_once_without_repeating_it() {
    let err = Endpoint::new("http://sk-secret@[::1/v1", None, Duration::from_secs(1)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("not a valid URL"), "{message}");
    assert!(!message.contains("sk-secret"), "{message}");
}

/// A tool call's arguments of 512 KiB arriving one byte per body piece, the worst cut a
/// network can make. A decoder that re-reads (or re-copies) its buffered line for every
/// piece does about 128 G steps here and never finishes within the test timeout; reading
/// each byte once, the decoder pulls every piece exactly once and yields one event.
#[tokio::test]
async fn a_huge_line_cut_into_single_bytes_is_read_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;

    const ARGUMENT_BYTES: usize = 512 * 1024;
    let arguments = "x".repeat(ARGUMENT_BYTES);
    let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "function": {"name": "sink", "arguments": arguments}}
    ]}}]});
    let body = format!("data: {chunk}\n\ndata: [DONE]\n\n");
    let pieces = body.len();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let bytes = futures_util::stream::iter(0..pieces).map(move |at| {
        counter.fetch_add(1, Ordering::Relaxed);
        Ok::<Bytes, std::io::Error>(Bytes::copy_from_slice(&body.as_bytes()[at..=at]))
    });
    let events: Vec<_> = decode_events(bytes).collect().await;
    assert_eq!(
        pulled.load(Ordering::Relaxed),
        pieces,
        "each piece pulled once"
    );
    assert_eq!(events.len(), 2, "the call and [DONE]");
    let data = events[0].as_ref().unwrap().data.clone().unwrap();
    let decoded: crate::model::chunk::Chunk = serde_json::from_str(&data).unwrap();
    let mut assembler = crate::model::stream::StreamAssembler::default();
    assembler.push(decoded).unwrap();
    assembler.mark_done();
    let (response, _) = assembler.finish(1, &mut || "unused".to_string());
    assert_eq!(response.tool_calls.len(), 1);
    assert_eq!(response.tool_calls[0].arguments.len(), ARGUMENT_BYTES);
    assert_eq!(events[1].as_ref().unwrap().data.as_deref(), Some("[DONE]"));
}
