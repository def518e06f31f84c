//! The scripted Chat Completions server the model client tests talk to: it records each
//! request and plays the next scripted reply (an SSE stream with a chosen ending, or an
//! error status).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_rs::model::{ModelClient, ModelSettings};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::stream::{self, StreamExt};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const API_KEY: &str = "sk-test-0123456789abcdef";

/// How a scripted stream ends.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// `data: [DONE]`, then a clean end.
    Done,
    /// A clean end of the body, no `[DONE]`.
    Eof,
    /// The connection is torn down mid-body, once the test calls `Script::cut` (so the
    /// client has surely read what came before).
    Abort,
    /// The body never ends and nothing more is sent.
    Stall,
}

#[derive(Clone, Debug)]
pub enum Reply {
    Sse {
        events: Vec<String>,
        ending: Ending,
    },
    Status {
        status: u16,
        retry_after: Option<&'static str>,
        body: String,
    },
    /// 200 with a whole JSON completion, as from a server that ignores `stream: true`.
    Json(Value),
    /// 200 with this body as an event stream, byte for byte (a recorded stream), sent
    /// in pieces of `piece` bytes.
    Raw {
        body: Vec<u8>,
        piece: usize,
    },
    /// 401 whose message repeats the Authorization header, as a careless server might.
    EchoAuthorization(u16),
}

#[derive(Debug)]
struct Recorded {
    authorization: Option<String>,
    body: Value,
}

#[derive(Default)]
pub struct Script {
    /// Played in order; the last one repeats forever.
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    pub cut: Arc<tokio::sync::Notify>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub script: Arc<Script>,
}

impl TestServer {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            requests: Mutex::default(),
            cut: Arc::default(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, script }
    }

    pub fn settings(&self) -> ModelSettings {
        test_settings(&format!("http://{}/v1", self.addr))
    }

    pub fn client(&self) -> ModelClient {
        ModelClient::new(self.settings()).unwrap()
    }

    pub fn request_count(&self) -> usize {
        self.script.requests.lock().unwrap().len()
    }

    pub fn request(&self, index: usize) -> (Option<String>, Value) {
        let requests = self.script.requests.lock().unwrap();
        let recorded = &requests[index];
        (recorded.authorization.clone(), recorded.body.clone())
    }
}

pub fn test_settings(base_url: &str) -> ModelSettings {
    ModelSettings {
        api_key: Some(SecretString::from(API_KEY)),
        request_timeout: Duration::from_secs(10),
        max_retries: 3,
        max_retry_elapsed: Duration::from_secs(10),
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        ..ModelSettings::new(base_url, "test-model")
    }
}

async fn handle(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap().to_string());
    script.requests.lock().unwrap().push(Recorded {
        authorization: authorization.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = {
        let mut replies = script.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.pop_front().unwrap()
        } else {
            replies.front().cloned().expect("the script has no replies")
        }
    };
    match reply {
        Reply::Sse { events, ending } => sse_response(events, ending, script.cut.clone()),
        Reply::Status {
            status,
            retry_after,
            body,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, value.parse().unwrap());
            }
            response
        }
        Reply::Json(body) => axum::Json(body).into_response(),
        Reply::Raw { body, piece } => {
            let pieces: Vec<Result<Bytes, std::io::Error>> = body
                .chunks(piece.max(1))
                .map(|part| Ok(Bytes::copy_from_slice(part)))
                .collect();
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(stream::iter(pieces)))
                .unwrap()
        }
        Reply::EchoAuthorization(status) => {
            let message = format!(
                "Incorrect API key provided: {}",
                authorization.unwrap_or_default()
            );
            let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
            (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response()
        }
    }
}

fn sse_response(events: Vec<String>, ending: Ending, cut: Arc<tokio::sync::Notify>) -> Response {
    let mut frames: Vec<String> = events
        .into_iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect();
    if matches!(ending, Ending::Done) {
        frames.push("data: [DONE]\n\n".to_string());
    }
    let frames = stream::iter(frames.into_iter().map(Ok::<_, std::io::Error>));
    let body = match ending {
        Ending::Done | Ending::Eof => Body::from_stream(frames),
        Ending::Abort => Body::from_stream(frames.chain(stream::once(async move {
            cut.notified().await;
            Err(std::io::Error::other("connection torn down by the test"))
        }))),
        Ending::Stall => Body::from_stream(frames.chain(stream::pending())),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap()
}

pub fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        "usage": null
    })
    .to_string()
}

pub fn usage_chunk(prompt_tokens: u64, completion_tokens: u64) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
        "choices": [],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}
    })
    .to_string()
}

/// A complete, successful text answer.
pub fn text_answer(text: &str) -> Reply {
    Reply::Sse {
        events: vec![
            chunk(json!({"role": "assistant", "content": text}), None),
            chunk(json!({}), Some("stop")),
            usage_chunk(10, 2),
        ],
        ending: Ending::Done,
    }
}

pub fn status(status: u16, body: Value) -> Reply {
    Reply::Status {
        status,
        retry_after: None,
        body: body.to_string(),
    }
}
