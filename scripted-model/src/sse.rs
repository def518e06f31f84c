//! Turning prepared chunks into HTTP bodies: a server-sent-event stream that ends in
//! `data: [DONE]`, or one that breaks off mid-way.
//!
//! A broken connection is made by failing the body stream: hyper then drops the
//! connection without the chunked-encoding terminator, so the client sees a body error
//! rather than a clean end, which is what a proxy timeout or a crashed provider looks like.

use std::io;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::Value;

/// How a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// `data: [DONE]`, then a clean end of body.
    Done,
    /// The connection is dropped with no sentinel.
    Cut,
}

/// The SSE response carrying `chunks`, one `data:` event each.
pub(crate) fn event_stream(chunks: Vec<Value>, end: StreamEnd) -> Response {
    let events = stream::iter(chunks)
        .map(|chunk| Ok::<Event, io::Error>(Event::default().data(chunk.to_string())));
    match end {
        StreamEnd::Done => {
            let done = stream::once(async { Ok(Event::default().data("[DONE]")) });
            Sse::new(events.chain(done)).into_response()
        }
        StreamEnd::Cut => Sse::new(events.chain(broken_connection())).into_response(),
    }
}

/// A JSON response whose body stops after its first half.
pub(crate) fn truncated_json(full: &Value) -> Response {
    let text = full.to_string();
    let half = text.len() / 2;
    // JSON text from serde_json is ASCII outside string values; step back to a boundary
    // in case the middle falls inside a multi-byte character.
    let cut = (0..=half)
        .rev()
        .find(|&index| text.is_char_boundary(index))
        .unwrap_or(0);
    let head = Bytes::from(text[..cut].to_owned());
    let body = stream::once(async move { Ok::<Bytes, io::Error>(head) }).chain(broken_connection());
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

/// Fails the body after giving hyper one turn to flush what came before, so the client
/// receives the partial data before the connection drops.
fn broken_connection<T: Send + 'static>() -> impl Stream<Item = Result<T, io::Error>> + Send {
    stream::once(async {
        tokio::task::yield_now().await;
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "scripted cut_stream: connection dropped on purpose",
        ))
    })
}
