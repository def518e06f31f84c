use std::time::Duration;

use super::*;

#[test]
fn retry_after_in_seconds_is_read() {
    assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
    assert_eq!(parse_retry_after(" 20 "), Some(Duration::from_secs(20)));
    assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
    assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
}

#[test]
fn retry_after_that_is_not_a_delay_is_ignored() {
    for value in [
        "-1",
        "NaN",
        "inf",
        "soon",
        "",
        "Wed, 21 Oct 2015 07:28:00 GMT",
    ] {
        assert_eq!(parse_retry_after(value), None, "{value}");
    }
}

#[test]
fn authorization_is_a_sensitive_bearer_header_only_when_a_key_is_set() {
    let key = SecretString::from("sk-abcdef-123456");
    let config = EndpointConfig::new("http://h/v1/", Some(&key)).unwrap();
    let headers = config.headers();
    let value = headers.get(AUTHORIZATION).unwrap();
    assert_eq!(value.to_str().unwrap(), "Bearer sk-abcdef-123456");
    assert!(value.is_sensitive());
    assert!(!format!("{headers:?} {config:?}").contains("sk-abcdef-123456"));

    let anonymous = EndpointConfig::new("http://h/v1", None).unwrap();
    assert!(anonymous.headers().get(AUTHORIZATION).is_none());
}

#[test]
fn trailing_slash_of_the_base_url_does_not_double_up() {
    let config = EndpointConfig::new("http://h/v1/", None).unwrap();
    assert_eq!(
        config.url("/chat/completions"),
        "http://h/v1/chat/completions"
    );
}
