//! What the scripted server was asked, kept in arrival order.
//!
//! Tests assert on the requests the agent sent (the conversation it built, the tools it
//! offered, that the API key went out), so every `/v1` request is kept whole. The
//! `Authorization` value is kept verbatim on purpose: the server only ever sees the fake
//! keys tests give the agent, and "was the key sent" is a behaviour worth pinning.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The `Authorization` header value (e.g. `Bearer sk-test`), if one was sent.
    pub authorization: Option<String>,
    /// The `Content-Type` header value, if one was sent.
    pub content_type: Option<String>,
    /// The body parsed as JSON; a body that is not JSON is kept as a JSON string, an
    /// empty body as `null`.
    pub body: Value,
    /// Milliseconds since the Unix epoch when the request arrived.
    pub received_at_ms: u64,
    /// The script step index this request consumed, if it consumed one.
    pub step: Option<usize>,
}

impl RecordedRequest {
    /// Parses a raw body the way the recorder keeps it.
    pub(crate) fn body_value(raw: &[u8]) -> Value {
        if raw.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
    }

    pub(crate) fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// The request log and the script cursor, under one lock so that step order and
/// record order agree even when requests race.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    journal: Mutex<Journal>,
}

#[derive(Debug, Default)]
struct Journal {
    requests: Vec<RecordedRequest>,
    steps_consumed: usize,
}

impl Recorder {
    /// Records a request that does not consume a script step.
    pub(crate) fn record(&self, request: RecordedRequest) {
        self.lock().requests.push(request);
    }

    /// Records a request and hands it the next of `total_steps` steps, if one is left.
    pub(crate) fn record_and_take_step(
        &self,
        mut request: RecordedRequest,
        total_steps: usize,
    ) -> Option<usize> {
        let mut journal = self.lock();
        let step = (journal.steps_consumed < total_steps).then_some(journal.steps_consumed);
        if let Some(index) = step {
            journal.steps_consumed = index + 1;
        }
        request.step = step;
        journal.requests.push(request);
        step
    }

    /// Counts a request answered without a script (the demo session), keeping nothing of
    /// it: a demo server runs for as long as its service does. Returns its index.
    pub(crate) fn count_unrecorded(&self) -> usize {
        let mut journal = self.lock();
        journal.steps_consumed += 1;
        journal.steps_consumed - 1
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub(crate) fn steps_consumed(&self) -> usize {
        self.lock().steps_consumed
    }

    /// Every critical section is a single push or counter update, so a poisoned lock
    /// still guards consistent data.
    fn lock(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
