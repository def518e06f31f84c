//! A scripted OpenAI-compatible model server, so that no test, benchmark or CI eval ever
//! talks to a hosted model.
//!
//! The server speaks the Chat Completions API (`POST /v1/chat/completions`, streaming and
//! not, and `GET /v1/models`) and answers each chat request with the next step of a
//! [`Script`]. It records every request it gets, so a test can check what the agent sent
//! (the conversation, the tools, the API key) as well as what it did with the answers.
//!
//! # Script format
//!
//! A script is JSON: the model name the server claims to be, and the steps in order.
//! Each chat request consumes one step; a request after the last step gets HTTP 500
//! `script exhausted after N steps`, so a run that over-runs its script fails visibly.
//!
//! ```json
//! {
//!   "model": "scripted",
//!   "steps": [
//!     {"type": "tool_calls",
//!      "content": "Let me look at the file first.",
//!      "calls": [{"name": "read_file_content", "arguments": {"path": "src/lib.rs"}}]},
//!     {"type": "error", "status": 429, "retry_after_secs": 1},
//!     {"type": "delay", "ms": 200, "then": {"type": "cut_stream"}},
//!     {"type": "message", "content": "Done: the bug is fixed.",
//!      "usage": {"prompt_tokens": 1200, "completion_tokens": 9}}
//!   ]
//! }
//! ```
//!
//! Step types (unknown types and unknown fields are load errors):
//! - `tool_calls`: `calls` (each `name` plus `arguments`, any JSON value, sent as its JSON
//!   text; a JSON string is sent verbatim, e.g. to send malformed arguments), optional
//!   `content`. Ids are `call_1`, `call_2`, ... across the whole run. Finish reason
//!   `tool_calls`.
//! - `message`: `content`, the final answer. Finish reason `stop`.
//! - `error`: `status` (400..=599), optional `retry_after_secs` (the `Retry-After`
//!   header), optional `message`, optional `body` replacing the OpenAI-style
//!   `{"error": {"message", "type", "param", "code"}}` body (a JSON string is sent as
//!   plain text). Mind the client's own retries: async-openai's default client retries
//!   429 and 5xx (up to three times, after `Retry-After`), and every retry consumes a
//!   step; a 429 whose error `type` is `insufficient_quota` is not retried.
//! - `cut_stream`: the connection breaks mid-answer. Streaming: the role and some text
//!   (optional `content`) arrive, then the connection drops with no `[DONE]`.
//!   Non-streaming: the JSON body stops half-way.
//! - `delay`: `ms`, then plays the step in `then`; the pair is one step. The step is
//!   consumed when the request arrives, so a client that times out and retries gets the
//!   next step.
//!
//! `tool_calls` and `message` take an optional `usage`
//! (`{"prompt_tokens", "completion_tokens"}`); without it, usage is estimated at four
//! characters a token over the request's `messages` and the answer. Usage is in every
//! non-streaming response, and in a final choice-less chunk of a stream when the request
//! set `stream_options.include_usage`, as the real API does.
//!
//! Streams are cut into several `chat.completion.chunk` deltas: text in a few pieces,
//! each tool call opening with its id and name and its arguments following in pieces,
//! with parallel calls interleaved by index. A request with a body that is not a JSON
//! object, or without `messages`, gets HTTP 400 and consumes no step.
//!
//! # The demo session
//!
//! [`ScriptedServer::start_demo`] plays no script: it answers each conversation with the
//! next step of a short real session (list the workspace, read a file, add a note to it,
//! finish), decided from the conversation itself; see [`DemoSession`]. `api --demo` runs
//! the service on it.
//!
//! # Looking inside
//!
//! In-process tests use [`ScriptedServer::requests`] and
//! [`ScriptedServer::steps_consumed`]. When the server runs as `evals scripted-server`
//! in another process, `GET /_scripted/requests` returns the recorded requests
//! ([`RecordedRequest`] as JSON) and `GET /_scripted/status` returns
//! `{"consumed": N, "total": M}`.

mod completion;
mod demo;
mod handlers;
mod recorder;
mod script;
mod server;
mod sse;

pub use demo::{DEMO_MODEL, DEMO_NOTE_FILE, DemoSession};
pub use recorder::RecordedRequest;
pub use script::{DEFAULT_MODEL, Script, ScriptError, ScriptedToolCall, ScriptedUsage, Step};
pub use server::{ScriptedServer, ServerError};
