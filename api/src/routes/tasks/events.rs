//! `GET /api/v1/tasks/{id}/events`: the task's event stream as Server-Sent Events.
//!
//! The status cache keeps each task's events in order with a live tail, so a reader who
//! arrives late gets the story from the start and then follows live; a reconnecting
//! `EventSource` sends `Last-Event-ID` (each event's id is its sequence number) and
//! resumes after it (`?last_event_id=` does the same for a client that cannot set the
//! header). Browsers' `EventSource` sends no `Authorization` header: it comes with a
//! short-lived ticket instead ([`crate::web::event_ticket`]). The stream ends when the
//! task's stream is closed (terminal state), or when the server shuts down, so
//! connections drain. When the cache is down the stream says so and carries status
//! changes read from the store instead ([`orchestrator::cache::follow`]); those carry no
//! id.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures_util::stream::{BoxStream, StreamExt};
use orchestrator::cache::{FollowOptions, follow};

use super::load_owned;
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;
use crate::web::event_ticket::EventsReader;

type EventStream = BoxStream<'static, Result<Event, Infallible>>;

/// Where to resume, for clients that cannot send `Last-Event-ID` (the `ticket` parameter
/// is read by [`EventsReader`]).
#[derive(Debug, Default, serde::Deserialize)]
pub struct ResumeQuery {
    last_event_id: Option<String>,
}

/// Follow a task: history first, then live events, until it finishes.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}/events",
    tag = "tasks",
    params(
        ("id" = String, Path, description = "Task id"),
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, description = "Resume after this event"),
        ("last_event_id" = Option<u64>, Query, description = "The same, for a client that cannot set the header (a new `EventSource`); the header wins"),
        ("ticket" = Option<String>, Query, description = "Instead of the bearer token: a ticket from `POST /api/v1/tasks/{id}/events/ticket`, for `EventSource`"),
    ),
    responses(
        (status = 200, description = "text/event-stream; each event's id is its sequence number, its data one JSON event", content_type = "text/event-stream"),
        (status = 400, description = "Last-Event-ID is not a number, or the query is malformed", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn task_events(
    State(state): State<SharedState>,
    EventsReader(owner): EventsReader,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<ResumeQuery>, QueryRejection>,
) -> Result<Sse<KeepAliveStream<EventStream>>, ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    stream_events(&state, task, &headers, query)
}

/// Follow one run of a task: its events from the start (a finished run's replay and
/// end), resumable by `Last-Event-ID` as the task's own stream.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}/runs/{run}/events",
    tag = "tasks",
    params(
        ("id" = String, Path, description = "Task id"),
        ("run" = u32, Path, minimum = 1, description = "Run number, from 1"),
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, description = "Resume after this event"),
        ("last_event_id" = Option<u64>, Query, description = "The same, for a client that cannot set the header; the header wins"),
        ("ticket" = Option<String>, Query, description = "Instead of the bearer token: a ticket from `POST /api/v1/tasks/{id}/events/ticket`"),
    ),
    responses(
        (status = 200, description = "text/event-stream, as for the task's events", content_type = "text/event-stream"),
        (status = 400, description = "Last-Event-ID is not a number, or the query is malformed", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such task or run", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn run_events(
    State(state): State<SharedState>,
    EventsReader(owner): EventsReader,
    Path((id, run)): Path<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<ResumeQuery>, QueryRejection>,
) -> Result<Sse<KeepAliveStream<EventStream>>, ApiError> {
    let mut task = load_owned(&state, &owner, &id).await?;
    let run = super::runs::run_number(&task, &run)?;
    if run < task.run_number {
        // A finished run: its stream is closed; the replay ends with its last status.
        let past = state.services.store.past_runs(task.id).await?;
        if let Some(record) = past.into_iter().find(|r| r.run_number == run) {
            task.status = record.status;
            task.message = record.message;
        }
        task.run_number = run;
    }
    stream_events(&state, task, &headers, query)
}

fn stream_events(
    state: &SharedState,
    task: orchestrator::Task,
    headers: &HeaderMap,
    query: Result<Query<ResumeQuery>, QueryRejection>,
) -> Result<Sse<KeepAliveStream<EventStream>>, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let event_id = |value: Option<&str>| {
        value
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::BadRequest("Last-Event-ID must be an event id (a number)".into())
            })
    };
    // The header wins, but a bad query is refused even beside a good header: a request
    // is either valid or not, whichever of its parts the server ends up using.
    let from_query = query
        .last_event_id
        .as_deref()
        .map(|value| event_id(Some(value)))
        .transpose()?;
    let from_header = headers
        .get("last-event-id")
        .map(|value| event_id(value.to_str().ok()))
        .transpose()?;
    let from_seq = from_header
        .or(from_query)
        .map_or(0, |seq| seq.saturating_add(1));
    let events = follow(
        state.services.cache.clone(),
        state.services.store.clone(),
        &task,
        from_seq,
        FollowOptions::default(),
    )
    .map(|item| {
        let event = Event::default().data(item.data.to_string());
        Ok(match item.seq {
            Some(seq) => event.id(seq.to_string()),
            None => event,
        })
    })
    .boxed();
    let shutdown = state.shutdown.clone().cancelled_owned();
    let events = events.take_until(shutdown).boxed();
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
