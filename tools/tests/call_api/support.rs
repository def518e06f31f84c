//! The local test server and the helpers every `call_api` test uses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tools::call_api::CallApiTool;
use tools::config::CallApiConfig;
use tools::{Tool, ToolContext, ToolError, ToolOutput, ToolsConfig, WorkspaceJail};

/// A local server and the number of requests it has received.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port())
    }

    pub fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port())
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

pub async fn count_hit(
    State(hits): State<Arc<AtomicUsize>>,
    request: Request,
    next: Next,
) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

pub async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_string()))
        .collect();
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

pub async fn status(Path(code): Path<u16>) -> impl IntoResponse {
    (
        StatusCode::from_u16(code).unwrap(),
        format!("status {code}"),
    )
}

pub async fn redirect(
    Path(code): Path<u16>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::LOCATION, query["to"].clone())],
    )
}

pub async fn endless_redirects(Path(step): Path<u32>) -> impl IntoResponse {
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/loop/{}", step + 1))],
    )
}

/// 5 MiB in 64 KiB chunks, with no content-length.
pub async fn streamed_big() -> impl IntoResponse {
    let chunks = (0..80).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 64 * 1024])));
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
}

pub async fn sized_big() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], "b".repeat(50_000))
}

pub async fn png() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "image/png")],
        vec![0x89u8, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a],
    )
}

pub async fn hang() -> &'static str {
    std::future::pending::<()>().await;
    "never"
}

pub async fn serve() -> TestServer {
    let hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/echo", any(echo))
        .route("/status/{code}", any(status))
        .route("/redirect/{code}", any(redirect))
        .route("/loop/{step}", any(endless_redirects))
        .route("/big", any(streamed_big))
        .route("/sized", any(sized_big))
        .route("/png", any(png))
        .route("/hang", any(hang))
        .layer(middleware::from_fn_with_state(Arc::clone(&hits), count_hit));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    TestServer { addr, hits }
}

pub fn config(allow_hosts: &[&str]) -> CallApiConfig {
    CallApiConfig {
        allow_hosts: allow_hosts.iter().map(|host| host.to_string()).collect(),
        ..CallApiConfig::default()
    }
}

pub async fn call_with(config: &CallApiConfig, args: Value) -> Result<ToolOutput, ToolError> {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext::new(
        WorkspaceJail::new(dir.path()).unwrap(),
        Arc::new(ToolsConfig::default()),
    );
    CallApiTool::new(config).unwrap().call(&ctx, args).await
}

pub async fn call(allow_hosts: &[&str], args: Value) -> Result<ToolOutput, ToolError> {
    call_with(&config(allow_hosts), args).await
}

pub fn rejection(result: Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::Rejected(message)) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub fn invalid_arguments(result: Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(err @ ToolError::InvalidArguments { .. }) => err.to_string(),
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

/// The echoed request, from the JSON body after the blank line that ends the headers.
pub fn echoed(output: &ToolOutput) -> Value {
    let (_, body) = output.content.split_once("\n\n").unwrap();
    serde_json::from_str(body).unwrap()
}
