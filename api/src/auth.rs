//! Bearer-token auth: who is calling, so each owner sees only its own tasks.
//!
//! Tokens are random strings handed out once (`api token create OWNER`, or
//! `API_DEV_TOKEN` at start); the store keeps only their SHA-256, so a leaked database
//! does not leak working tokens. Looking a hash up on every request would put the store
//! on every status read's path, so known hashes are cached for a short while (tokens are
//! never revoked through the API, so a minute of staleness costs nothing).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use orchestrator::{StoreError, TaskStore};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::SharedState;

const CACHE_TTL: Duration = Duration::from_secs(60);
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

/// Recently seen token hashes and their owners.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, (String, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<String> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(owner, _)| owner.clone())
    }

    fn put(&self, hash: String, owner: String) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAP {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_CAP {
                entries.clear();
            }
        }
        entries.insert(hash, (owner, Instant::now()));
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
        if let Some(owner) = state.tokens.get(&hash) {
            return Ok(Owner(owner));
        }
        let owner = state
            .services
            .store
            .owner_of_token(&hash)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        state.tokens.put(hash, owner.clone());
        Ok(Owner(owner))
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
    fn generated_tokens_are_long_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
    }
}
