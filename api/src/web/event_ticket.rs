//! Event tickets: how a browser's `EventSource` follows a task without the API token in
//! a URL.
//!
//! `EventSource` cannot send an `Authorization` header, and a token in a query string
//! ends up in proxy logs and browser history. So a client holding the token asks
//! `POST /api/v1/tasks/{id}/events/ticket` for a ticket, and opens
//! `GET /api/v1/tasks/{id}/events?ticket=...`. A ticket is not the token and is worth
//! far less: it is good for reading one task's events only (it is signed over the task id
//! and its owner), for [`TICKET_TTL`] after it was issued (long enough for
//! `EventSource`'s own reconnects; a client then asks for a new one), and nothing else
//! accepts it. It is stateless (an HMAC with a server key, [`EventTickets`]), so any API
//! process sharing the key accepts it.
//!
//! The owner's task list follows `GET /api/v1/tasks/updates` the same way, with a ticket
//! from `POST /api/v1/tasks/updates/ticket`: signed over the owner alone (whom it names,
//! since no task does) under another purpose, so neither kind of ticket opens the
//! other's stream.

use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::{Json, http::StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::Owner;
use crate::error::{ApiError, ErrorBody};
use crate::routes::tasks::load_owned;
use crate::state::SharedState;

type HmacSha256 = Hmac<Sha256>;

/// How long a ticket opens (and reopens) a task's event stream.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// Keeps tickets of one purpose apart from anything else signed with a related key.
const DOMAIN: &str = "agent-rs events ticket v1";
/// The purpose of tickets for an owner's task updates.
const UPDATES_DOMAIN: &str = "agent-rs task updates ticket v1";

/// Issues and checks tickets with one server key.
pub struct EventTickets {
    /// Keyed once; cloned per ticket (the key itself is not kept around).
    keyed: HmacSha256,
}

impl EventTickets {
    /// Tickets signed with `key`. HMAC-SHA256 pads shorter keys with zeros to its
    /// 64-byte block, so a 32-byte key zero-padded here is that same 32-byte key.
    pub fn new(key: [u8; 64]) -> Self {
        Self {
            keyed: <HmacSha256 as KeyInit>::new(&key.into()),
        }
    }

    /// Tickets signed with a key derived from `secret` (the embedded server's blob
    /// signing key): stable across restarts, never equal to the secret it came from.
    pub fn derived_from(secret: &SecretSlice<u8>) -> Self {
        let secret = secret.expose_secret();
        // HMAC's own key rule, spelled out so that it cannot fail: a key over the block
        // size is hashed, a shorter one zero-padded.
        let mut block = [0u8; 64];
        if secret.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        let mut derive = <HmacSha256 as KeyInit>::new(&block.into());
        derive.update(DOMAIN.as_bytes());
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&derive.finalize().into_bytes());
        Self::new(key)
    }

    /// A key of this process only: tickets die with it, which costs a browser one more
    /// ticket request after a restart. Several API processes behind one address need a
    /// shared key instead ([`EventTickets::derived_from`] a shared secret).
    pub fn random() -> Self {
        let mut key = [0u8; 64];
        rand::fill(&mut key[..]);
        Self::new(key)
    }

    fn mac(&self, task_id: &str, owner: &str, expires: i64) -> HmacSha256 {
        self.mac_of(&[DOMAIN, task_id, owner, &expires.to_string()])
    }

    fn mac_of(&self, parts: &[&str]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        // Task ids and owners hold no newline, and each purpose has a fixed number of
        // parts ending with a number, so the joined message is unambiguous.
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// A ticket for `owner` to follow its own task updates until `expires` (Unix
    /// seconds). It carries the owner's name (base64), which it is signed over.
    pub fn issue_for_owner(&self, owner: &str, expires: i64) -> String {
        let sig = self
            .mac_of(&[UPDATES_DOMAIN, owner, &expires.to_string()])
            .finalize()
            .into_bytes();
        format!(
            "{expires}.{}.{}",
            URL_SAFE_NO_PAD.encode(owner),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    /// The owner an updates ticket was issued to, if it is genuine and has not expired
    /// at `now` (Unix seconds).
    pub fn owner_of(&self, ticket: &str, now: i64) -> Option<String> {
        let mut parts = ticket.split('.');
        let (Some(expires), Some(owner), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let expires = expires.parse::<i64>().ok()?;
        let owner = String::from_utf8(URL_SAFE_NO_PAD.decode(owner).ok()?).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let genuine = self
            .mac_of(&[UPDATES_DOMAIN, &owner, &expires.to_string()])
            .verify_slice(&sig)
            .is_ok();
        (genuine && expires >= now).then_some(owner)
    }

    /// A ticket for `owner` to read `task_id`'s events until `expires` (Unix seconds).
    pub fn issue(&self, task_id: &str, owner: &str, expires: i64) -> String {
        let sig = self.mac(task_id, owner, expires).finalize().into_bytes();
        format!("{expires}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Whether `ticket` lets `owner` read `task_id`'s events at `now` (Unix seconds).
    pub fn verify(&self, ticket: &str, task_id: &str, owner: &str, now: i64) -> bool {
        let Some((expires, sig)) = ticket.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(sig)) = (expires.parse::<i64>(), URL_SAFE_NO_PAD.decode(sig)) else {
            return false;
        };
        expires >= now && self.mac(task_id, owner, expires).verify_slice(&sig).is_ok()
    }
}

/// A fresh ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTicket {
    /// Pass as `?ticket=` to `GET /api/v1/tasks/{id}/events`.
    pub ticket: String,
    /// When it stops opening the stream, in milliseconds since the Unix epoch. A stream
    /// already open goes on until the task ends.
    pub expires_at: i64,
}

/// Get a ticket to follow one task's events from a browser's `EventSource`.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/{id}/events/ticket",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 201, description = "A ticket for this task's events, valid for a minute", body = EventTicket),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn issue_ticket(
    State(state): State<SharedState>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<EventTicket>), ApiError> {
    let task = load_owned(&state, &owner, &id).await?;
    let expires = (state.clock)() + TICKET_TTL.as_secs() as i64;
    let ticket = state
        .event_tickets
        .issue(&task.id.to_string(), &task.owner, expires);
    Ok((
        StatusCode::CREATED,
        Json(EventTicket {
            ticket,
            expires_at: expires * 1000,
        }),
    ))
}

/// Get a ticket to follow the caller's task updates from a browser's `EventSource`.
#[utoipa::path(
    post,
    path = "/api/v1/tasks/updates/ticket",
    tag = "tasks",
    responses(
        (status = 201, description = "A ticket for `GET /api/v1/tasks/updates`, valid for a minute", body = EventTicket),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn issue_updates_ticket(
    State(state): State<SharedState>,
    owner: Owner,
) -> (StatusCode, Json<EventTicket>) {
    let expires = (state.clock)() + TICKET_TTL.as_secs() as i64;
    let ticket = state.event_tickets.issue_for_owner(&owner.0, expires);
    (
        StatusCode::CREATED,
        Json(EventTicket {
            ticket,
            expires_at: expires * 1000,
        }),
    )
}

/// Who may read an owner's task updates: the bearer of a token, or of a valid updates
/// ticket (the owner it names).
#[derive(Debug, Clone)]
pub struct UpdatesReader(pub Owner);

impl FromRequestParts<SharedState> for UpdatesReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        match ticket_in(parts, state).await {
            None => Ok(UpdatesReader(
                Owner::from_request_parts(parts, state).await?,
            )),
            Some(ticket) => state
                .event_tickets
                .owner_of(&ticket, (state.clock)())
                .map(|owner| UpdatesReader(Owner(owner)))
                .ok_or(ApiError::Unauthorized),
        }
    }
}

async fn ticket_in(parts: &mut Parts, state: &SharedState) -> Option<String> {
    Query::<TicketQuery>::from_request_parts(parts, state)
        .await
        .ok()
        .and_then(|Query(query)| query.ticket)
}

#[derive(Debug, Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

/// Who may read a task's event stream: the bearer of a token (its owner), or of a valid
/// ticket for this very task (the owner it was issued to).
#[derive(Debug, Clone)]
pub struct EventsReader(pub Owner);

impl FromRequestParts<SharedState> for EventsReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ticket) = ticket_in(parts, state).await else {
            return Ok(EventsReader(Owner::from_request_parts(parts, state).await?));
        };
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Unauthorized)?;
        let id = params
            .into_iter()
            .find_map(|(name, value)| (name == "id").then_some(value))
            .ok_or(ApiError::Unauthorized)?;
        let task_id = id.parse().map_err(|_| ApiError::task_not_found(&id))?;
        let task = state
            .services
            .store
            .get(task_id)
            .await?
            .ok_or_else(|| ApiError::task_not_found(&id))?;
        let now = (state.clock)();
        if state
            .event_tickets
            .verify(&ticket, &task.id.to_string(), &task.owner, now)
        {
            Ok(EventsReader(Owner(task.owner)))
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "0195c6b2-0000-7000-8000-000000000001";

    #[test]
    fn a_ticket_opens_its_own_task_for_its_owner_until_it_expires() {
        let tickets = EventTickets::random();
        let ticket = tickets.issue(TASK, "alice", 1_000);
        assert!(tickets.verify(&ticket, TASK, "alice", 1_000));
        assert!(!tickets.verify(&ticket, TASK, "alice", 1_001), "expired");
        assert!(!tickets.verify(&ticket, "other-task", "alice", 999));
        assert!(!tickets.verify(&ticket, TASK, "bob", 999));
    }

    #[test]
    fn a_ticket_with_a_changed_expiry_or_another_key_is_refused() {
        let tickets = EventTickets::random();
        let ticket = tickets.issue(TASK, "alice", 1_000);
        let (_, sig) = ticket.split_once('.').unwrap();
        assert!(!tickets.verify(&format!("9999.{sig}"), TASK, "alice", 999));
        assert!(!EventTickets::random().verify(&ticket, TASK, "alice", 999));
        for junk in ["", "1000", "1000.", "x.y", "1000.!!!"] {
            assert!(!tickets.verify(junk, TASK, "alice", 999), "{junk:?}");
        }
    }

    #[test]
    fn an_updates_ticket_names_its_owner_until_it_expires_and_nothing_else() {
        let tickets = EventTickets::random();
        let ticket = tickets.issue_for_owner("alice", 1_000);
        assert_eq!(tickets.owner_of(&ticket, 1_000).as_deref(), Some("alice"));
        assert_eq!(tickets.owner_of(&ticket, 1_001), None, "expired");
        assert_eq!(EventTickets::random().owner_of(&ticket, 999), None);
        // Another owner's name in it, or a later expiry, breaks the signature.
        let (expires, rest) = ticket.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let bob = URL_SAFE_NO_PAD.encode("bob");
        assert_eq!(
            tickets.owner_of(&format!("{expires}.{bob}.{sig}"), 999),
            None
        );
        assert_eq!(tickets.owner_of(&format!("9999.{rest}"), 999), None);
        for junk in [
            "",
            "1000",
            "1000..",
            "1000.YWxpY2U",
            "1000.YWxpY2U.!!",
            "1.a.b.c",
        ] {
            assert_eq!(tickets.owner_of(junk, 999), None, "{junk:?}");
        }
    }

    #[test]
    fn task_tickets_and_updates_tickets_do_not_open_each_others_streams() {
        let tickets = EventTickets::random();
        let updates = tickets.issue_for_owner("alice", 1_000);
        assert!(!tickets.verify(&updates, TASK, "alice", 999));
        let task = tickets.issue(TASK, "alice", 1_000);
        assert_eq!(tickets.owner_of(&task, 999), None);
    }
}
