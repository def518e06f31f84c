//! Server-Sent Events off a response body, as a client reads them.

use futures_util::StreamExt;
use serde_json::Value;

use crate::WAIT;

/// One Server-Sent Event: its id and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub data: Value,
}

impl SseEvent {
    pub fn kind(&self) -> &str {
        self.data["type"].as_str().unwrap_or_default()
    }
}

/// Reads Server-Sent Events off a response body.
pub struct SseReader {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            stream: response.bytes_stream().boxed(),
            buf: Vec::new(),
        }
    }

    /// The next event; `None` when the stream ended (or broke: the server died).
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(block).unwrap();
                let (mut id, mut data) = (None, String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().parse().unwrap());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data).unwrap();
                return Some(SseEvent { id, data });
            }
            let chunk = self.stream.next().await?.ok()?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Every event until the stream ends.
    pub async fn collect(mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }

    /// Reads until an event matches `wanted` (bounded); returns it.
    pub async fn until(&mut self, wanted: impl Fn(&SseEvent) -> bool) -> SseEvent {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(event) = self.next().await {
                if wanted(&event) {
                    return Some(event);
                }
            }
            None
        })
        .await;
        found
            .ok()
            .flatten()
            .expect("the event stream ended or stalled before the awaited event")
    }
}
