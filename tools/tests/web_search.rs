#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `web_search_doc_and_reference` against local stand-ins for SearxNG, Brave and Tavily:
//! the request each backend is sent, how its answer is read, and its failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use secrecy::SecretString;
use serde_json::{Value, json};
use tools::config::{WebSearchBackend, WebSearchConfig};
use tools::web_search::WebSearchTool;
use tools::{Tool, ToolContext, ToolError, ToolOutput, ToolsConfig, WorkspaceJail};

const KEY: &str = "sk-test-very-secret-key-123";

/// What a test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn record(State(log): State<Log>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    log.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query,
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, body.into())).await
}

/// A server answering every request on `path` with `status` and `body`.
async fn serve(path: &str, status: StatusCode, body: &'static str) -> (String, Log) {
    let log: Log = Arc::default();
    let handler = move || async move {
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let router = Router::new()
        .route(path, any(handler))
        .route(
            "/hang/search",
            any(|| async {
                std::future::pending::<()>().await;
                ""
            }),
        )
        .layer(middleware::from_fn_with_state(Arc::clone(&log), record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, log)
}

fn seen(log: &Log) -> Seen {
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1, "expected exactly one request: {log:?}");
    log[0].clone()
}

fn searxng(base_url: &str) -> WebSearchConfig {
    config(WebSearchBackend::Searxng {
        base_url: base_url.to_string(),
    })
}

fn brave(base_url: &str) -> WebSearchConfig {
    config(WebSearchBackend::Brave {
        api_key: SecretString::from(KEY),
        base_url: Some(base_url.to_string()),
    })
}

fn tavily(base_url: &str) -> WebSearchConfig {
    config(WebSearchBackend::Tavily {
        api_key: SecretString::from(KEY),
        base_url: Some(base_url.to_string()),
    })
}

fn config(backend: WebSearchBackend) -> WebSearchConfig {
    WebSearchConfig {
        backend: Some(backend),
        ..WebSearchConfig::default()
    }
}

async fn search(config: &WebSearchConfig, args: Value) -> Result<ToolOutput, ToolError> {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext::new(
        WorkspaceJail::new(dir.path()).unwrap(),
        Arc::new(ToolsConfig::default()),
    );
    WebSearchTool::new(config).unwrap().call(&ctx, args).await
}

/// A backend failure's message, checked to be free of the API key.
fn rejection(result: Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::Rejected(message)) => {
            assert!(!message.contains(KEY), "key leaked: {message}");
            assert!(message.contains("proceed without it"), "{message}");
            message
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

const SEARXNG_ANSWER: &str = r#"{"query": "serde derive", "results": [
    {"title": "Derive <b>serde</b>", "url": "https://serde.rs/derive.html",
     "content": "Using <strong>derive</strong> &amp; attributes", "engine": "ddg"},
    {"title": "serde_json", "url": "https://docs.rs/serde_json", "content": null},
    {"title": "no url", "content": "dropped"},
    {"title": "Third", "url": "https://example.org/3", "content": "three"}
]}"#;

#[tokio::test]
async fn searxng_is_asked_for_json_and_its_results_are_listed() {
    let (base, log) = serve("/searx/search", StatusCode::OK, SEARXNG_ANSWER).await;
    let output = search(
        &searxng(&format!("{base}/searx/")),
        json!({"query": "serde derive"}),
    )
    .await
    .unwrap();
    let request = seen(&log);
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.path, "/searx/search");
    assert_eq!(request.query["q"], "serde derive");
    assert_eq!(request.query["format"], "json");
    assert!(output.success);
    assert_eq!(
        output.content,
        "Web results for \"serde derive\":\n\
         \n1. Derive serde\n   https://serde.rs/derive.html\n   Using derive & attributes\n\
         \n2. serde_json\n   https://docs.rs/serde_json\n\
         \n3. Third\n   https://example.org/3\n   three\n"
    );
    assert_eq!(output.details, json!({"backend": "searxng", "results": 3}));
}

#[tokio::test]
async fn results_are_limited_to_num_results() {
    let (base, _) = serve("/search", StatusCode::OK, SEARXNG_ANSWER).await;
    let output = search(&searxng(&base), json!({"query": "serde", "num_results": 1}))
        .await
        .unwrap();
    assert!(output.content.contains("1. Derive serde"));
    assert!(!output.content.contains("2. "));
}

const BRAVE_ANSWER: &str = r#"{"type": "search", "web": {"results": [
    {"title": "Tokio <strong>select</strong>", "url": "https://docs.rs/tokio/select",
     "description": "Waits on multiple &lt;futures&gt;", "age": "1 day"}
]}}"#;

#[tokio::test]
async fn brave_gets_the_key_header_and_a_count() {
    let (base, log) = serve("/res/v1/web/search", StatusCode::OK, BRAVE_ANSWER).await;
    let output = search(
        &brave(&base),
        json!({"query": "tokio select!", "num_results": 7}),
    )
    .await
    .unwrap();
    let request = seen(&log);
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.query["q"], "tokio select!");
    assert_eq!(request.query["count"], "7");
    assert_eq!(request.headers["x-subscription-token"], KEY);
    assert_eq!(request.headers[header::ACCEPT], "application/json");
    assert!(request.headers.get(header::AUTHORIZATION).is_none());
    assert!(output.content.contains(
        "1. Tokio select\n   https://docs.rs/tokio/select\n   Waits on multiple <futures>\n"
    ));
}

#[tokio::test]
async fn num_results_is_clamped_to_the_configured_cap_and_at_least_one() {
    for (asked, sent) in [(100, "20"), (0, "1")] {
        let (base, log) = serve("/res/v1/web/search", StatusCode::OK, BRAVE_ANSWER).await;
        search(&brave(&base), json!({"query": "q", "num_results": asked}))
            .await
            .unwrap();
        assert_eq!(seen(&log).query["count"], sent, "asked {asked}");
    }
}

#[tokio::test]
async fn brave_answer_without_web_results_says_nothing_was_found() {
    let (base, _) = serve(
        "/res/v1/web/search",
        StatusCode::OK,
        r#"{"type": "search"}"#,
    )
    .await;
    let output = search(&brave(&base), json!({"query": "zzzz"}))
        .await
        .unwrap();
    assert!(output.success);
    assert!(
        output.content.starts_with("No web results for \"zzzz\""),
        "{}",
        output.content
    );
}

const TAVILY_ANSWER: &str = r#"{"query": "axum router", "results": [
    {"title": "Router in axum", "url": "https://docs.rs/axum/latest/axum/struct.Router.html",
     "content": "The router type", "score": 0.9}
], "response_time": 0.5}"#;

#[tokio::test]
async fn tavily_gets_a_bearer_key_and_a_json_body() {
    let (base, log) = serve("/search", StatusCode::OK, TAVILY_ANSWER).await;
    let output = search(
        &tavily(&base),
        json!({"query": "axum router", "num_results": 3}),
    )
    .await
    .unwrap();
    let request = seen(&log);
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/search");
    assert_eq!(
        request.headers[header::AUTHORIZATION],
        format!("Bearer {KEY}").as_str()
    );
    assert_eq!(request.headers[header::CONTENT_TYPE], "application/json");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, json!({"query": "axum router", "max_results": 3}));
    assert!(output.content.contains("1. Router in axum\n"));
    assert_eq!(output.details["backend"], "tavily");
}

#[tokio::test]
async fn error_status_is_rejected_without_the_key() {
    // The backend quotes the key back, as some APIs do.
    let body = r#"{"error": "invalid subscription token sk-test-very-secret-key-123"}"#;
    let (base, _) = serve("/res/v1/web/search", StatusCode::UNAUTHORIZED, body).await;
    let message = rejection(search(&brave(&base), json!({"query": "q"})).await);
    assert!(message.contains("brave backend"), "{message}");
    assert!(message.contains("answered 401 Unauthorized"), "{message}");
    assert!(message.contains("[redacted]"), "{message}");
}

#[tokio::test]
async fn malformed_json_is_rejected_without_the_key() {
    let (base, _) = serve("/search", StatusCode::OK, "<html>not json</html>").await;
    let message = rejection(search(&tavily(&base), json!({"query": "q"})).await);
    assert!(message.contains("not the expected JSON"), "{message}");
}

#[tokio::test]
async fn wrong_json_shape_is_rejected() {
    let (base, _) = serve("/search", StatusCode::OK, r#"{"results": "nope"}"#).await;
    let message = rejection(search(&searxng(&base), json!({"query": "q"})).await);
    assert!(message.contains("not the expected JSON"), "{message}");
}

#[tokio::test]
async fn backend_that_never_answers_times_out() {
    let (base, _) = serve("/unused", StatusCode::OK, "").await;
    let config = WebSearchConfig {
        timeout_secs: 1,
        ..tavily(&format!("{base}/hang"))
    };
    let message = rejection(search(&config, json!({"query": "q"})).await);
    assert!(message.contains("did not answer in time"), "{message}");
}

#[tokio::test]
async fn unreachable_backend_is_rejected_without_the_key() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let message = rejection(search(&brave(&base), json!({"query": "q"})).await);
    assert!(message.contains("could not connect"), "{message}");
}

#[tokio::test]
async fn unconfigured_search_succeeds_and_says_to_proceed_without_it() {
    let output = search(&WebSearchConfig::default(), json!({"query": "anything"}))
        .await
        .unwrap();
    assert!(output.success);
    assert!(output.content.starts_with("Web search is not configured"));
    assert!(output.content.contains("Proceed without it"));
    assert_eq!(output.details["configured"], false);
}

#[tokio::test]
async fn bad_arguments_are_invalid() {
    for args in [
        json!({}),
        json!({"query": ""}),
        json!({"query": "   "}),
        json!({"query": 3}),
        json!({"query": "q", "num_results": "5"}),
        json!({"query": "q", "num_results": -1}),
        json!({"query": "q", "engine": "google"}),
    ] {
        let result = search(&WebSearchConfig::default(), args.clone()).await;
        assert!(
            matches!(result, Err(ToolError::InvalidArguments { .. })),
            "{args}: {result:?}"
        );
    }
}

#[test]
fn invalid_base_url_fails_construction() {
    let err = WebSearchTool::new(&searxng("not a url")).unwrap_err();
    assert!(err.is_fatal());
    assert!(err.to_string().contains("base_url `not a url`"), "{err}");
}

#[test]
fn key_with_a_line_break_fails_construction_without_showing_it() {
    let config = config(WebSearchBackend::Brave {
        api_key: SecretString::from("secret\nvalue"),
        base_url: None,
    });
    let err = WebSearchTool::new(&config).unwrap_err();
    assert!(err.is_fatal());
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[test]
fn tool_presents_its_contract_and_hides_the_key() {
    let tool = WebSearchTool::new(&brave("https://search.example")).unwrap();
    assert_eq!(tool.name(), "web_search_doc_and_reference");
    assert!(!tool.mutates());
    let schema = tool.parameters();
    assert_eq!(schema["required"], json!(["query"]));
    assert!(schema["properties"]["num_results"].is_object());
    assert!(!format!("{tool:?}").contains(KEY));
}
