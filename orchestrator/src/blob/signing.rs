//! HMAC signatures for the local blob store's URLs.
//!
//! The agent holds no storage credentials: the worker hands it URLs that carry their own
//! permission (`method`, `expires`, `sig`), and the API's blob route checks them before it
//! streams a byte. A signature binds the method, the key and the expiry together, so a
//! GET URL cannot be replayed as a PUT, moved to another key, or stretched in time. The
//! cluster profile gets the same guarantees from S3/COS presigned URLs instead.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shorter keys would make signatures guessable offline; 32 bytes is SHA-256's block
/// strength and what [`generate_signing_key`] returns.
pub const MIN_SIGNING_KEY_LEN: usize = 32;

/// The two things a signed URL may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedMethod {
    Get,
    Put,
}

impl SignedMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SignedMethod::Get => "GET",
            SignedMethod::Put => "PUT",
        }
    }
}

/// Why a signed request was refused. The API answers 403 for both; the split tells a
/// client whether asking for a fresh URL can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("this signed URL has expired; ask for a new one")]
    Expired,
    #[error("this signed URL is not valid for this blob and method")]
    Invalid,
}

/// The query string of a signed URL, as the API's blob route receives it
/// (`?method=GET&expires=...&sig=...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedQuery {
    pub method: String,
    pub expires: i64,
    pub sig: String,
}

/// A fresh random signing key, for an embedded server started without a configured one
/// (its URLs then die with the process, which only costs a relaunch of running tasks).
pub fn generate_signing_key() -> Result<SecretSlice<u8>, getrandom::Error> {
    let mut key = vec![0u8; MIN_SIGNING_KEY_LEN];
    getrandom::fill(&mut key)?;
    Ok(SecretSlice::from(key))
}

/// Signs and checks `(method, key, expires)` triples with one secret key.
pub(crate) struct UrlSigner {
    /// Keyed once; cloned per signature (the secret itself is not kept around).
    keyed: HmacSha256,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner").finish_non_exhaustive()
    }
}

impl UrlSigner {
    /// `None` when the key is shorter than [`MIN_SIGNING_KEY_LEN`].
    pub(crate) fn new(key: &SecretSlice<u8>) -> Option<Self> {
        let key = key.expose_secret();
        if key.len() < MIN_SIGNING_KEY_LEN {
            return None;
        }
        let keyed = HmacSha256::new_from_slice(key).ok()?;
        Some(Self { keyed })
    }

    fn mac(&self, method: &str, key: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        // Keys hold no control characters (`validate_key`), so the newline-joined message
        // is unambiguous.
        mac.update(format!("{method}\n{key}\n{expires}").as_bytes());
        mac
    }

    /// Lowercase hex of HMAC-SHA256(key, "METHOD\nKEY\nEXPIRES").
    pub(crate) fn sign(&self, method: SignedMethod, key: &str, expires: i64) -> String {
        hex::encode(
            self.mac(method.as_str(), key, expires)
                .finalize()
                .into_bytes(),
        )
    }

    /// The signature is checked first (in constant time), the clock second: a tampered
    /// expiry is `Invalid`, an honest old URL is `Expired`. `now == expires` still passes.
    pub(crate) fn verify(
        &self,
        method: &str,
        key: &str,
        expires: i64,
        sig: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let sig = hex::decode(sig).map_err(|_| SignatureError::Invalid)?;
        self.mac(method, key, expires)
            .verify_slice(&sig)
            .map_err(|_| SignatureError::Invalid)?;
        if now > expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}
