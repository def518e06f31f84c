//! Sealing tokens sent with tasks, so the store never holds one in plain text.
//!
//! XChaCha20-Poly1305 under a 32-byte server key, with a random 24-byte nonce per token
//! (random nonces are safe at this size) and the task's owner as associated data: a
//! sealed token copied into another owner's row does not open. The key lives in a file
//! (`[orchestrator.pull_requests] key_file`), created on first use in the data folder
//! when not configured; every process of a deployment must read the same one, and losing
//! it only makes stored tokens unusable (their tasks' pull requests fail and can be
//! retried with a new token).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};

use super::SealedToken;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The format's version, so another cipher can be told apart later.
const PREFIX: &str = "v1.";

/// Why a key or a sealed token is unusable. Never holds the token or the key.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read or create the token key {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token key {0} is not 64 hex digits")]
    BadKey(PathBuf),
    #[error("the stored token does not open with this server's key")]
    Unsealable,
    #[error("cannot seal the token: {0}")]
    Seal(String),
}

/// Seals and opens tokens with the server's key.
#[derive(Clone)]
pub struct TokenSealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer(..)")
    }
}

impl TokenSealer {
    pub fn from_key(key: &[u8; KEY_LEN]) -> Result<Self, SealError> {
        let cipher = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| SealError::Seal("the key is not 32 bytes".into()))?;
        Ok(Self { cipher })
    }

    /// The key in `path`, created (mode 0600) with a random key when there is none.
    pub fn from_key_file(path: &Path) -> Result<Self, SealError> {
        let key_error = |source| SealError::KeyFile {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            create_key_file(path).map_err(key_error)?;
        }
        let text = std::fs::read_to_string(path).map_err(key_error)?;
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::BadKey(path.to_path_buf()))?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| SealError::BadKey(path.to_path_buf()))?;
        Self::from_key(&key)
    }

    /// Seals `token` for `owner`'s tasks.
    pub fn seal(&self, owner: &str, token: &SecretString) -> Result<SealedToken, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|err| SealError::Seal(err.to_string()))?;
        let payload = Payload {
            msg: token.expose_secret().as_bytes(),
            aad: owner.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::Seal("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(SealedToken(format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(out)
        )))
    }

    /// Opens a token sealed for `owner`'s tasks.
    pub fn open(&self, owner: &str, sealed: &SealedToken) -> Result<SecretString, SealError> {
        let bytes = sealed
            .0
            .strip_prefix(PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .filter(|bytes| bytes.len() > NONCE_LEN)
            .ok_or(SealError::Unsealable)?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Unsealable)?;
        let payload = Payload {
            msg: sealed,
            aad: owner.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::Unsealable)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SealError::Unsealable)
    }
}

/// Writes a fresh random key, readable by this user only; a file another process created
/// first is kept.
fn create_key_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|err| std::io::Error::other(err.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(hex::encode(key).as_bytes())?;
            file.sync_all()
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_for_its_owner_only() {
        let sealer = TokenSealer::from_key(&[7; KEY_LEN]).unwrap();
        let token = SecretString::from("ghp_secret-token");
        let sealed = sealer.seal("alice", &token).unwrap();
        assert!(!sealed.0.contains("secret"), "sealed text shows the token");
        assert_eq!(
            sealer.open("alice", &sealed).unwrap().expose_secret(),
            "ghp_secret-token"
        );
        assert!(sealer.open("bob", &sealed).is_err());
        let other = TokenSealer::from_key(&[8; KEY_LEN]).unwrap();
        assert!(other.open("alice", &sealed).is_err());
        assert_ne!(
            sealer.seal("alice", &token).unwrap(),
            sealed,
            "nonce reused"
        );
        assert_eq!(format!("{sealed:?}"), "SealedToken(..)");
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/pr-token.key");
        let first = TokenSealer::from_key_file(&path).unwrap();
        let sealed = first
            .seal("alice", &SecretString::from("tok".to_string()))
            .unwrap();
        let second = TokenSealer::from_key_file(&path).unwrap();
        assert_eq!(
            second.open("alice", &sealed).unwrap().expose_secret(),
            "tok"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            TokenSealer::from_key_file(&path),
            Err(SealError::BadKey(_))
        ));
    }
}
