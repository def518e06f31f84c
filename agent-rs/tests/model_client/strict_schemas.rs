//! Tool schemas against a server that validates them the way Gemini's OpenAI-compatible
//! endpoint does: it answers 400 to any JSON Schema keyword outside its OpenAPI subset, to
//! `type` given as an array, to formats it does not know and to `required` names that
//! are not properties. The client must end up sending schemas it accepts, and an MCP
//! server's schema of any shape must get through.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_rs::model::{
    ChatMessage, ChatRequest, ModelClient, ModelEvent, ModelSettings, SchemaDialect,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::server::test_settings;

/// Keywords of the validator's subset; anything else in a schema is refused.
const ACCEPTED: &[&str] = &[
    "type",
    "description",
    "title",
    "enum",
    "properties",
    "required",
    "items",
    "anyOf",
    "nullable",
    "format",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
];

/// What a strict validator finds wrong with `schema` at `at`, as Gemini words it.
fn violation(schema: &Value, at: &str) -> Option<String> {
    let Value::Object(map) = schema else {
        return Some(format!("Invalid value at '{at}': not an object"));
    };
    for (key, value) in map {
        if !ACCEPTED.contains(&key.as_str()) {
            return Some(format!(
                "Invalid JSON payload received. Unknown name \"{key}\" at '{at}': Cannot find field."
            ));
        }
        if key == "type" && !value.is_string() {
            return Some(format!(
                "Invalid value at '{at}.type': Proto field is not repeating, cannot start list."
            ));
        }
    }
    if let Some(format) = map.get("format").and_then(Value::as_str) {
        let known = match map.get("type").and_then(Value::as_str) {
            Some("string") => matches!(format, "date-time" | "enum"),
            Some("integer") => matches!(format, "int32" | "int64"),
            Some("number") => matches!(format, "float" | "double"),
            _ => false,
        };
        if !known {
            return Some(format!(
                "Invalid value at '{at}.format': unsupported format \"{format}\""
            ));
        }
    }
    let properties = map.get("properties").and_then(Value::as_object);
    if let Some(required) = map.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !properties.is_some_and(|p| p.contains_key(name)) {
                return Some(format!(
                    "* GenerateContentRequest.{at}.required: property is not defined"
                ));
            }
        }
    }
    let nested = properties
        .into_iter()
        .flatten()
        .map(|(name, property)| (format!("{at}.properties[{name}]"), property))
        .chain(map.get("items").map(|items| (format!("{at}.items"), items)))
        .chain(
            map.get("anyOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, option)| (format!("{at}.anyOf[{i}]"), option)),
        );
    for (path, child) in nested {
        if let Some(problem) = violation(child, &path) {
            return Some(problem);
        }
    }
    None
}

#[derive(Default)]
struct Validator {
    /// Each request's verdict: `None` accepted, else the 400's message.
    verdicts: Mutex<Vec<Option<String>>>,
}

async fn strict(State(validator): State<Arc<Validator>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap();
    let problem = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .find_map(|(i, tool)| {
            violation(
                &tool["function"]["parameters"],
                &format!("tools[0].function_declarations[{i}].parameters"),
            )
        });
    validator.verdicts.lock().unwrap().push(problem.clone());
    if let Some(message) = problem {
        let body =
            json!([{"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}]);
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "accepted"},
                     "finish_reason": "stop"}]});
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        format!("data: {chunk}\n\ndata: [DONE]\n\n"),
    )
        .into_response()
}

async fn start_validator() -> (SocketAddr, Arc<Validator>) {
    let validator = Arc::new(Validator::default());
    let app = Router::new()
        .route("/v1beta/openai/chat/completions", post(strict))
        .with_state(validator.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, validator)
}

/// The built-in tools, and a schema as an MCP server may bring it: everything a strict
/// validator refuses, at several depths.
fn offered_tools() -> Vec<tools::ToolSpec> {
    let mut specs = tools::ToolRegistry::builtin(&tools::ToolsConfig::default())
        .unwrap()
        .specs();
    specs.push(tools::ToolSpec {
        name: "db__query".into(),
        description: "Runs a query (from an MCP server).".into(),
        parameters: json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "propertyNames": {"pattern": "^[a-z_]+$"},
            "$defs": {"Limit": {"type": "integer", "format": "uint64", "minimum": 1}},
            "properties": {
                "sql": {"type": "string", "minLength": 1},
                "mode": {"const": "read"},
                "limit": {"$ref": "#/$defs/Limit"},
                "timeout": {"type": ["number", "null"], "exclusiveMinimum": 0},
                "params": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer", "format": "uint32"}]}},
                "options": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["sql", "dialect"],
        }),
    });
    specs
}

fn settings(addr: SocketAddr, dialect: SchemaDialect) -> ModelSettings {
    ModelSettings {
        tool_schema: dialect,
        ..test_settings(&format!("http://{addr}/v1beta/openai"))
    }
}

async fn turn(client: &ModelClient, specs: &[tools::ToolSpec]) -> (String, Vec<ModelEvent>) {
    let messages = vec![
        ChatMessage::system("You are a coding agent."),
        ChatMessage::user("Go."),
    ];
    let request = ChatRequest {
        messages: &messages,
        tools: specs,
    };
    let mut events = Vec::new();
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        client.complete(&request, &mut |event| events.push(event)),
    )
    .await
    .unwrap()
    .unwrap();
    (response.content.unwrap_or_default(), events)
}

#[tokio::test]
async fn the_validator_refuses_the_full_schemas_the_tools_declare() {
    let (addr, validator) = start_validator().await;
    let client = ModelClient::new(settings(addr, SchemaDialect::Full)).unwrap();
    let messages = vec![ChatMessage::user("Go.")];
    let specs = offered_tools();
    let request = ChatRequest {
        messages: &messages,
        tools: &specs,
    };
    let result = client.complete(&request, &mut |_| {}).await;
    let message = result.unwrap_err().to_string();
    assert!(message.contains("Unknown name"), "{message}");
    let verdicts = validator.verdicts.lock().unwrap();
    assert_eq!(
        verdicts.len(),
        1,
        "a refused schema is not retried as it is"
    );
}

#[tokio::test]
async fn auto_switches_to_the_portable_dialect_once_the_schemas_are_refused() {
    let (addr, validator) = start_validator().await;
    let client = ModelClient::new(settings(addr, SchemaDialect::Auto)).unwrap();
    let specs = offered_tools();

    let (answer, events) = turn(&client, &specs).await;
    assert_eq!(answer, "accepted");
    let retried: Vec<&String> = events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::Retrying { reason, wait, .. } => {
                assert_eq!(*wait, Duration::ZERO, "a rewrite is sent at once");
                Some(reason)
            }
            ModelEvent::ContentDelta(_) => None,
        })
        .collect();
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert!(retried[0].contains("portable"), "{}", retried[0]);
    assert!(client.sends_portable_schemas());

    // Later turns go portable from the start.
    let (answer, events) = turn(&client, &specs).await;
    assert_eq!(answer, "accepted");
    assert!(
        events
            .iter()
            .all(|e| matches!(e, ModelEvent::ContentDelta(_)))
    );
    let verdicts = validator.verdicts.lock().unwrap().clone();
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    assert!(verdicts[0].is_some());
    assert_eq!(verdicts[1..], [None, None], "portable schemas were refused");
}

#[tokio::test]
async fn portable_schemas_are_accepted_on_the_first_request() {
    let (addr, validator) = start_validator().await;
    let client = ModelClient::new(settings(addr, SchemaDialect::Portable)).unwrap();
    let (answer, events) = turn(&client, &offered_tools()).await;
    assert_eq!(answer, "accepted");
    assert!(
        events
            .iter()
            .all(|e| matches!(e, ModelEvent::ContentDelta(_)))
    );
    assert_eq!(*validator.verdicts.lock().unwrap(), [None]);
}
