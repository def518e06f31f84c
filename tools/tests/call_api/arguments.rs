//! Argument checking and the tool's presented contract.

use serde_json::json;
use tools::call_api::CallApiTool;
use tools::config::CallApiConfig;
use tools::{Tool, ToolError};

use crate::support::*;

#[tokio::test]
async fn unsupported_method_is_invalid() {
    let message = invalid_arguments(
        call(
            &[],
            json!({"method": "TRACE", "url": "http://example.com/"}),
        )
        .await,
    );
    assert!(
        message.contains("method `TRACE` is not supported"),
        "{message}"
    );
    assert!(
        message.contains("GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"),
        "{message}"
    );
}

#[tokio::test]
async fn wrong_argument_shapes_are_invalid() {
    for args in [
        json!({"url": "http://example.com/"}),
        json!({"method": "GET"}),
        json!({"method": "GET", "url": "http://example.com/", "headers": ["a"]}),
        json!({"method": "GET", "url": "http://example.com/", "headers": {"a": 1}}),
        json!({"method": "GET", "url": "http://example.com/", "timeout_seconds": "10"}),
        json!({"method": "GET", "url": "http://example.com/", "timeout_seconds": -1}),
        json!({"method": "GET", "url": "http://example.com/", "verbose": true}),
        json!({"method": 1, "url": "http://example.com/"}),
        json!("not an object"),
        json!({"method": "GET", "url": "/relative/path"}),
        json!({"method": "GET", "url": "http://example.com/", "headers": {"bad name": "x"}}),
        json!({"method": "GET", "url": "http://example.com/", "headers": {"Host": "other"}}),
    ] {
        let result = call(&[], args.clone()).await;
        assert!(
            matches!(result, Err(ToolError::InvalidArguments { .. })),
            "{args}: {result:?}"
        );
    }
}

#[tokio::test]
async fn invalid_header_value_is_reported_without_the_value() {
    let message = invalid_arguments(
        call(
            &[],
            json!({"method": "GET", "url": "http://example.com/", "headers": {"Authorization": "Bearer top-secret\nx"}}),
        )
        .await,
    );
    assert!(message.contains("header `Authorization`"), "{message}");
    assert!(!message.contains("top-secret"), "{message}");
}

#[test]
fn malformed_allow_list_entry_fails_construction() {
    let err = CallApiTool::new(&config(&["localhost:http"])).unwrap_err();
    assert!(err.is_fatal());
    assert!(err.to_string().contains("`localhost:http`"), "{err}");
}

#[test]
fn tool_presents_its_contract() {
    let tool = CallApiTool::new(&CallApiConfig::default()).unwrap();
    assert_eq!(tool.name(), "call_api");
    assert!(tool.mutates());
    let schema = tool.parameters();
    let properties = schema["properties"].as_object().unwrap();
    for field in ["method", "url", "headers", "body", "timeout_seconds"] {
        assert!(properties.contains_key(field), "{field}");
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["method", "url"]);
}
