//! Bearer-token auth: who is calling, so each owner sees only its own tasks.
//!
//! Tokens are random strings handed out once (`api token create OWNER`, or
//! `API_DEV_TOKEN` at start); the store keeps only their SHA-256, so a leaked database
//! does not leak working tokens. `api token list` shows them by a prefix of that hash,
//! `api token revoke ID` stops one working.
//!
//! Looking a hash up on every request would put the store on every request's path, so
//! answers are cached, in a map bounded in entries: known tokens for
//! `token_cache_secs` (a token revoked from another process is refused within that
//! time), unknown ones for `unknown_token_cache_secs` (a client retrying with a wrong
//! token does not reach the database each time).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use orchestrator::{StoreError, TaskStore, TokenInfo};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::SharedState;

/// Most token hashes the cache holds, known and unknown together.
const CACHE_CAP: usize = 10_000;

/// The SHA-256 (hex) of a token: what the store keeps.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (256 bits, hex, with a recognisable prefix).
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("agt_{}", hex::encode(bytes))
}

/// Stores `token`'s hash for `owner`.
pub async fn register_token(
    store: &dyn TaskStore,
    owner: &str,
    token: &str,
) -> Result<(), StoreError> {
    store.add_token(owner, &hash_token(token)).await
}

/// `api token list`'s table: one token a line, times in UTC (RFC 3339).
pub fn token_table(tokens: &[TokenInfo]) -> String {
    let mut out = format!(
        "{:<16}  {:<24}  {:<20}  {}\n",
        "ID", "OWNER", "CREATED", "REVOKED"
    );
    for token in tokens {
        let revoked = token.revoked_at.map(rfc3339).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<16}  {:<24}  {:<20}  {}\n",
            token.id,
            token.owner,
            rfc3339(token.created_at),
            revoked
        ));
    }
    out
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian
/// calendar, from the day count: Howard Hinnant's `civil_from_days`).
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Recently looked-up token hashes: their owner, or `None` for a token the store does
/// not know (or was revoked).
pub struct TokenCache {
    entries: RwLock<HashMap<String, (Option<String>, Instant)>>,
    known_ttl: Duration,
    unknown_ttl: Duration,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(30), Duration::from_secs(10))
    }
}

impl TokenCache {
    /// Known tokens are trusted for `known_ttl`, unknown ones refused for `unknown_ttl`,
    /// without asking the store again.
    pub fn new(known_ttl: Duration, unknown_ttl: Duration) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            known_ttl,
            unknown_ttl,
        }
    }

    fn ttl(&self, owner: &Option<String>) -> Duration {
        if owner.is_some() {
            self.known_ttl
        } else {
            self.unknown_ttl
        }
    }

    /// `Some(answer)` when the cache has a fresh one.
    fn get(&self, hash: &str) -> Option<Option<String>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|(owner, at)| at.elapsed() < self.ttl(owner))
            .map(|(owner, _)| owner.clone())
    }

    fn put(&self, hash: String, owner: Option<String>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAP {
            entries.retain(|_, (owner, at)| at.elapsed() < self.ttl(owner));
            if entries.len() >= CACHE_CAP {
                // Still full of fresh entries (a flood of made-up tokens): start over
                // rather than grow.
                entries.clear();
            }
        }
        entries.insert(hash, (owner, Instant::now()));
    }

    /// Forgets every answer (after a revocation in this process).
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The authenticated caller: the owner its token belongs to.
#[derive(Debug, Clone)]
pub struct Owner(pub String);

impl FromRequestParts<SharedState> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hash = hash_token(token);
        let owner = match state.tokens.get(&hash) {
            Some(answer) => answer,
            None => {
                let owner = state.services.store.owner_of_token(&hash).await?;
                state.tokens.put(hash, owner.clone());
                owner
            }
        };
        owner.map(Owner).ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_sha256_hex_and_differs_from_the_token() {
        let hash = hash_token("secret");
        assert_eq!(
            hash,
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
    }

    #[test]
    fn answers_expire_after_their_own_ttl_and_the_cache_stays_bounded() {
        let cache = TokenCache::new(Duration::from_secs(60), Duration::ZERO);
        cache.put("known".into(), Some("alice".into()));
        cache.put("unknown".into(), None);
        assert_eq!(cache.get("known"), Some(Some("alice".to_string())));
        assert_eq!(cache.get("unknown"), None, "expired at once");
        for n in 0..CACHE_CAP + 10 {
            cache.put(format!("made-up-{n}"), None);
        }
        assert!(cache.len() <= CACHE_CAP, "{}", cache.len());
        let cache = TokenCache::new(Duration::ZERO, Duration::from_secs(60));
        cache.put("unknown".into(), None);
        assert_eq!(cache.get("unknown"), Some(None));
    }

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_709_164_800_000 + 3_723_000),
            "2024-02-29T01:02:03Z"
        );
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
    }
}
