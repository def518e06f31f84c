//! `GET /api/v1/tasks/{id}/events`: the task's event stream as Server-Sent Events.
//!
//! The status cache keeps each task's events in order with a live tail, so a reader who
//! arrives late gets the story from the start and then follows live; a reconnecting
//! `EventSource` sends `Last-Event-ID` (each event's id is its sequence number) and
//! resumes after it. The stream ends when the task's stream is closed (terminal state),
//! or when the server shuts down, so connections drain. When the cache is down the
//! stream says so and carries status changes read from the store instead
//! ([`orchestrator::cache::follow`]); those carry no id.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures_util::stream::{BoxStream, StreamExt};
use orchestrator::cache::{FollowOptions, follow};

use super::load_owned;
use crate::auth::Owner;
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;

type EventStream = BoxStream<'static, Result<Event, Infallible>>;

/// Follow a task: history first, then live events, until it finishes.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}/events",
    tag = "tasks",
    params(
        ("id" = String, Path, description = "Task id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "text/event-stream; each event's id is its sequence number, its data one JSON event", content_type = "text/event-stream"),
        (status = 400, description = "Last-Event-ID is not a number", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn task_events(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<KeepAliveStream<EventStream>>, ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    let from_seq = match headers.get("last-event-id") {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|seq| seq.saturating_add(1))
            .ok_or_else(|| {
                ApiError::BadRequest("Last-Event-ID must be an event id (a number)".into())
            })?,
    };
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
