//! `GET /api/v1/tasks/updates`: the caller's tasks as they change, as Server-Sent Events.
//!
//! A task list that keeps itself current without every client polling `GET
//! /api/v1/tasks`: the stream opens with a snapshot of the owner's newest tasks
//! (`{"type":"snapshot","tasks":[...]}`), then sends a task whenever a new one appears or
//! one it watches changes (`{"type":"task","task":{...}}`, the same view as the list's).
//! A reconnecting client simply gets a fresh snapshot; events carry no id to resume from.
//! Browsers' `EventSource` opens it with a ticket
//! ([`crate::web::event_ticket::UpdatesReader`]).
//!
//! Where the changes come from: the status cache holds every task's latest status (the
//! worker sets it at each move), so the live tasks the stream watches are checked against
//! it often and cheaply ([`LIVE_CHECK`]), and only a task whose cached status moved is read
//! from the store. The cache knows nothing per owner, so new tasks, and changes the cache
//! does not carry (a follow-up queued, a pull request's URL), are found by re-reading the
//! owner's first page from the store, less often ([`RESYNC`]): one indexed query per open
//! stream. When the cache fails the stream says so (`{"type":"degraded"}`) and goes on
//! from those store reads alone, trying the cache again at each one
//! (`{"type":"live_restored"}`), as a task's own event stream does.
//!
//! What is watched: the newest `limit` tasks, and any task that was live while watched
//! (even once newer ones pushed it off the first page), until it finishes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures_util::stream::{self, BoxStream, StreamExt};
use orchestrator::{Task, TaskFilter, TaskId, TaskStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use utoipa::IntoParams;

use super::{DEFAULT_PAGE, MAX_PAGE};
use crate::dto::TaskView;
use crate::error::{ApiError, ErrorBody};
use crate::state::SharedState;
use crate::web::event_ticket::UpdatesReader;

type EventStream = BoxStream<'static, Result<Event, Infallible>>;

/// How often the watched live tasks' statuses are read from the cache.
pub const LIVE_CHECK: Duration = Duration::from_millis(500);
/// How often the owner's first page is read from the store (new tasks, other changes,
/// and everything while the cache is down).
pub const RESYNC: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdatesParams {
    /// How many of the newest tasks the snapshot holds, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Follow the caller's tasks: a snapshot of the newest, then each new or changed task.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/updates",
    tag = "tasks",
    params(
        UpdatesParams,
        ("ticket" = Option<String>, Query, description = "Instead of the bearer token: a ticket from `POST /api/v1/tasks/updates/ticket`, for `EventSource`"),
    ),
    responses(
        (status = 200, description = "text/event-stream, until the client or the server closes it. Each event's data is one JSON object: first `{\"type\":\"snapshot\",\"tasks\":[Task, ...]}` (newest first), then `{\"type\":\"task\",\"task\":Task}` for each new or changed task; `{\"type\":\"degraded\"}` when the status cache failed (changes then come from the store, every few seconds) and `{\"type\":\"live_restored\"}` when it is back. Events have no id: a reconnect starts with a new snapshot.", content_type = "text/event-stream"),
        (status = 401, description = "Missing or unknown token, or a bad or expired ticket", body = ErrorBody),
        (status = 422, description = "Bad limit", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn task_updates(
    State(state): State<SharedState>,
    UpdatesReader(owner): UpdatesReader,
    query: Result<Query<UpdatesParams>, QueryRejection>,
) -> Result<Sse<KeepAliveStream<EventStream>>, ApiError> {
    let Query(params) = query.map_err(|err| ApiError::Invalid(err.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let mut watcher = Watcher::new(state.clone(), owner.0, limit);
    let snapshot = watcher.snapshot().await?;
    let shutdown = state.shutdown.clone().cancelled_owned();
    let events: EventStream = stream::once(async move { snapshot })
        .chain(stream::unfold(watcher, Watcher::next))
        .map(|data| Ok(Event::default().data(data.to_string())))
        .take_until(shutdown)
        .boxed();
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// What the stream last told the client about one task.
struct Seen {
    status: TaskStatus,
    /// The cache's id for the task's current run.
    events_id: TaskId,
    /// The cached status the store was last read for, so that a cache that lags
    /// behind the store (an update it missed) costs one store read, not one per check.
    cached: Option<TaskStatus>,
    /// The view sent, without `updated_at` (lease renewals move it and nothing else).
    view: Value,
}

struct Watcher {
    state: SharedState,
    owner: String,
    limit: u32,
    seen: HashMap<TaskId, Seen>,
    outbox: VecDeque<Value>,
    degraded: bool,
    next_resync: Instant,
}

impl Watcher {
    fn new(state: SharedState, owner: String, limit: u32) -> Self {
        Self {
            state,
            owner,
            limit,
            seen: HashMap::new(),
            outbox: VecDeque::new(),
            degraded: false,
            next_resync: Instant::now() + RESYNC,
        }
    }

    /// The first event: the owner's newest tasks, all remembered.
    async fn snapshot(&mut self) -> Result<Value, ApiError> {
        let tasks = self.first_page().await?;
        let views: Vec<Value> = tasks.into_iter().filter_map(|t| self.note(t)).collect();
        Ok(json!({"type": "snapshot", "tasks": views}))
    }

    async fn first_page(&self) -> Result<Vec<Task>, orchestrator::StoreError> {
        let filter = TaskFilter {
            owner: Some(self.owner.clone()),
            status: None,
            limit: self.limit,
            cursor: None,
        };
        Ok(self.state.services.store.list(filter).await?.tasks)
    }

    /// Remembers `task`; its view when the client has not seen it like this yet.
    fn note(&mut self, task: Task) -> Option<Value> {
        let (id, status, events_id) = (task.id, task.status, task.events_id());
        let view = serde_json::to_value(TaskView::from(task)).ok()?;
        let mut compared = view.clone();
        if let Some(fields) = compared.as_object_mut() {
            fields.remove("updated_at");
        }
        let cached = self.seen.get(&id).and_then(|seen| seen.cached);
        let unchanged = self.seen.get(&id).is_some_and(|seen| seen.view == compared);
        self.seen.insert(
            id,
            Seen {
                status,
                events_id,
                cached,
                view: compared,
            },
        );
        (!unchanged).then_some(view)
    }

    fn send(&mut self, task: Task) {
        if let Some(view) = self.note(task) {
            self.outbox.push_back(json!({"type": "task", "task": view}));
        }
    }

    async fn next(mut self) -> Option<(Value, Self)> {
        loop {
            if let Some(item) = self.outbox.pop_front() {
                return Some((item, self));
            }
            tokio::time::sleep(LIVE_CHECK).await;
            if Instant::now() >= self.next_resync {
                self.resync().await;
                self.next_resync = Instant::now() + RESYNC;
            } else if !self.degraded {
                self.check_cache().await;
            }
        }
    }

    fn live(&self) -> Vec<(TaskId, TaskId)> {
        self.seen
            .iter()
            .filter(|(_, seen)| !seen.status.is_terminal())
            .map(|(id, seen)| (*id, seen.events_id))
            .collect()
    }

    /// Reads the live tasks' statuses from the cache; a task whose status moved is
    /// read again from the store.
    async fn check_cache(&mut self) {
        let cache = self.state.services.cache.clone();
        let mut moved = Vec::new();
        for (id, events_id) in self.live() {
            match cache.status(events_id).await {
                Ok(Some(status)) => {
                    if let Some(seen) = self.seen.get_mut(&id)
                        && seen.status != status
                        && seen.cached != Some(status)
                    {
                        seen.cached = Some(status);
                        moved.push(id);
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(owner = %self.owner, error = %err, "task updates fall back to the task store");
                    self.degraded = true;
                    self.outbox.push_back(json!({
                        "type": "degraded",
                        "message": "live updates are unavailable (the status cache failed); \
                                    reading the tasks from the store every few seconds until it is back",
                    }));
                    return;
                }
            }
        }
        for id in moved {
            self.reread(id).await;
        }
    }

    async fn reread(&mut self, id: TaskId) {
        match self.state.services.store.get(id).await {
            Ok(Some(task)) => self.send(task),
            Ok(None) => {
                self.seen.remove(&id);
            }
            Err(err) => {
                tracing::debug!(task_id = %id, error = %err, "cannot re-read a watched task");
            }
        }
    }

    /// Reads the owner's first page (new tasks, any change), the live tasks that left
    /// it, and, while degraded, whether the cache is back.
    async fn resync(&mut self) {
        let page = match self.first_page().await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(owner = %self.owner, error = %err, "cannot read the watched tasks");
                return;
            }
        };
        let in_page: HashSet<TaskId> = page.iter().map(|task| task.id).collect();
        // Oldest first, so a client adding each at the top keeps the list's order.
        for task in page.into_iter().rev() {
            self.send(task);
        }
        for (id, _) in self.live() {
            if !in_page.contains(&id) {
                self.reread(id).await;
            }
        }
        self.seen
            .retain(|id, seen| in_page.contains(id) || !seen.status.is_terminal());
        if self.degraded {
            let probe = self
                .seen
                .values()
                .next()
                .map_or_else(TaskId::new, |s| s.events_id);
            if self.state.services.cache.status(probe).await.is_ok() {
                self.degraded = false;
                self.outbox.push_back(json!({"type": "live_restored"}));
            }
        }
    }
}
