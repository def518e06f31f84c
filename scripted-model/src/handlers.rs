//! The HTTP endpoints: the OpenAI-compatible ones the agent calls, and the `/_scripted`
//! ones tests use to look inside a server running in another process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::completion::{
    AssistantTurn, CompletionMeta, ToolCallOut, Usage, cut_stream_chunks, default_error_message,
    error_body,
};
use super::demo::DemoSession;
use super::recorder::{RecordedRequest, Recorder};
use super::script::{Script, Step};
use super::sse::{StreamEnd, event_stream, truncated_json};

/// Partial text a `cut_stream` step sends when the script gives none.
const DEFAULT_CUT_CONTENT: &str = "This answer breaks off";

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) script: Script,
    /// When set, every chat request is answered by the demo session instead of the
    /// script, and requests are counted but not kept.
    pub(crate) demo: Option<DemoSession>,
    pub(crate) recorder: Recorder,
    /// Source of `call_<n>` ids, unique across the whole run.
    next_call_id: AtomicU64,
}

impl ServerState {
    pub(crate) fn new(script: Script) -> Self {
        Self {
            script,
            demo: None,
            recorder: Recorder::default(),
            next_call_id: AtomicU64::new(1),
        }
    }

    fn next_call_id(&self) -> String {
        format!("call_{}", self.next_call_id.fetch_add(1, Ordering::Relaxed))
    }
}

type Shared = State<Arc<ServerState>>;

fn record_of(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> RecordedRequest {
    let header_text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization: header_text(header::AUTHORIZATION),
        content_type: header_text(header::CONTENT_TYPE),
        body: RecordedRequest::body_value(body),
        received_at_ms: RecordedRequest::now_ms(),
        step: None,
    }
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(error_body(status.as_u16(), message))).into_response()
}

/// `POST /v1/chat/completions`: consumes the next script step and plays it.
pub(crate) async fn chat_completions(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(demo) = state.demo {
        return play_demo(&state, demo, &body).await;
    }
    let record = record_of(&method, &uri, &headers, &body);
    let request = record.body.clone();
    // A malformed request is the client's bug: answer it the way the API does, and
    // leave the script where it is.
    if let Some(problem) = request_problem(&request) {
        state.recorder.record(record);
        return error_response(StatusCode::BAD_REQUEST, &problem);
    }
    let total = state.script.steps.len();
    let Some(index) = state.recorder.record_and_take_step(record, total) else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "script exhausted after {total} steps: the client sent more requests than the script has steps"
            ),
        );
    };
    let Some(step) = state.script.steps.get(index) else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "script step out of range",
        );
    };
    let delay_ms = step.total_delay_ms();
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let options = RequestOptions::of(&request);
    let meta = CompletionMeta {
        id: format!("chatcmpl-scripted-{index}"),
        created: RecordedRequest::now_ms() / 1000,
        model: state.script.model.clone(),
    };
    play(&state, step.answer(), &request, &meta, options)
}

/// A chat request answered by the demo session: the step comes from the conversation.
async fn play_demo(state: &ServerState, demo: DemoSession, body: &[u8]) -> Response {
    let request = RecordedRequest::body_value(body);
    if let Some(problem) = request_problem(&request) {
        return error_response(StatusCode::BAD_REQUEST, &problem);
    }
    let index = state.recorder.count_unrecorded();
    let step = demo.next_step(&request);
    let delay_ms = step.total_delay_ms();
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let meta = CompletionMeta {
        id: format!("chatcmpl-demo-{index}"),
        created: RecordedRequest::now_ms() / 1000,
        model: state.script.model.clone(),
    };
    play(
        state,
        step.answer(),
        &request,
        &meta,
        RequestOptions::of(&request),
    )
}

/// What a chat request must have for the real API to accept it.
fn request_problem(request: &Value) -> Option<String> {
    if !request.is_object() {
        return Some("The request body must be a JSON object.".to_owned());
    }
    if !request.get("messages").is_some_and(Value::is_array) {
        return Some("'messages' is a required property and must be an array.".to_owned());
    }
    None
}

#[derive(Debug, Clone, Copy)]
struct RequestOptions {
    stream: bool,
    include_usage: bool,
}

impl RequestOptions {
    fn of(request: &Value) -> Self {
        let flag = |value: Option<&Value>| value.and_then(Value::as_bool).unwrap_or(false);
        Self {
            stream: flag(request.get("stream")),
            include_usage: flag(request.pointer("/stream_options/include_usage")),
        }
    }
}

fn play(
    state: &ServerState,
    step: &Step,
    request: &Value,
    meta: &CompletionMeta,
    options: RequestOptions,
) -> Response {
    match step {
        Step::ToolCalls {
            calls,
            content,
            usage,
        } => {
            let tool_calls: Vec<ToolCallOut> = calls
                .iter()
                .map(|call| ToolCallOut {
                    id: state.next_call_id(),
                    name: call.name.clone(),
                    arguments: call.arguments_string(),
                })
                .collect();
            let usage = Usage::resolve(*usage, request, content.as_deref(), &tool_calls);
            let turn = AssistantTurn {
                content: content.clone(),
                tool_calls,
                usage,
            };
            answer(&turn, meta, options)
        }
        Step::Message { content, usage } => {
            let usage = Usage::resolve(*usage, request, Some(content), &[]);
            let turn = AssistantTurn {
                content: Some(content.clone()),
                tool_calls: Vec::new(),
                usage,
            };
            answer(&turn, meta, options)
        }
        Step::Error {
            status,
            retry_after_secs,
            message,
            body,
        } => scripted_error(
            *status,
            *retry_after_secs,
            message.as_deref(),
            body.as_ref(),
        ),
        Step::CutStream { content } => {
            let partial = content.as_deref().unwrap_or(DEFAULT_CUT_CONTENT);
            if options.stream {
                event_stream(cut_stream_chunks(meta, partial), StreamEnd::Cut)
            } else {
                let turn = AssistantTurn {
                    content: Some(partial.to_owned()),
                    tool_calls: Vec::new(),
                    usage: Usage::resolve(None, request, Some(partial), &[]),
                };
                truncated_json(&turn.to_response(meta))
            }
        }
        // `answer()` already unwrapped delays; a nested one has nothing left to wait for.
        Step::Delay { then, .. } => play(state, then, request, meta, options),
    }
}

fn answer(turn: &AssistantTurn, meta: &CompletionMeta, options: RequestOptions) -> Response {
    if options.stream {
        event_stream(turn.to_chunks(meta, options.include_usage), StreamEnd::Done)
    } else {
        Json(turn.to_response(meta)).into_response()
    }
}

fn scripted_error(
    status: u16,
    retry_after_secs: Option<u64>,
    message: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Some(Value::String(raw)) => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            raw.clone(),
        )
            .into_response(),
        Some(json_body) => (status, Json(json_body.clone())).into_response(),
        None => {
            let message =
                message.map_or_else(|| default_error_message(status.as_u16()), str::to_owned);
            error_response(status, &message)
        }
    };
    if let Some(seconds) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `GET /v1/models`: the one model the script plays.
pub(crate) async fn models(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    state
        .recorder
        .record(record_of(&method, &uri, &headers, &[]));
    Json(json!({
        "object": "list",
        "data": [{
            "id": state.script.model,
            "object": "model",
            "created": 0,
            "owned_by": "scripted",
        }],
    }))
}

/// Any other path: recorded, so a test can see what the client really asked for.
pub(crate) async fn unknown_path(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state
        .recorder
        .record(record_of(&method, &uri, &headers, &body));
    error_response(
        StatusCode::NOT_FOUND,
        &format!(
            "Unknown endpoint {method} {}: the scripted server serves POST /v1/chat/completions and GET /v1/models.",
            uri.path()
        ),
    )
}

/// `GET /_scripted/requests`: the recorded requests, in arrival order.
pub(crate) async fn recorded_requests(State(state): Shared) -> Json<Vec<RecordedRequest>> {
    Json(state.recorder.snapshot())
}

/// `GET /_scripted/status`: how far the script has been played.
pub(crate) async fn status(State(state): Shared) -> Json<Value> {
    Json(json!({
        "consumed": state.recorder.steps_consumed(),
        "total": state.script.steps.len(),
    }))
}
