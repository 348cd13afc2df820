//! Encryption at rest for revealable key copies and upstream credentials (XChaCha20-Poly1305).

use std::fmt;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 24;
/// Shortest master key accepted, in characters.
pub const MIN_MASTER_KEY_LEN: usize = 32;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The master key is too short to be a real secret.
    #[error(
        "the master key must be at least {MIN_MASTER_KEY_LEN} characters (try `openssl rand -hex 32`)"
    )]
    WeakMasterKey,
    /// The ciphertext was not made with this master key, or was altered.
    #[error("the sealed value cannot be opened with this master key")]
    Unsealable,
}

/// The instance master key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    /// Derives the 256-bit cipher key from the configured master secret.
    pub fn new(secret: &str) -> Result<Self, CryptoError> {
        if secret.chars().count() < MIN_MASTER_KEY_LEN {
            return Err(CryptoError::WeakMasterKey);
        }
        let mut hasher = Sha256::new();
        hasher.update(b"tollgate master key v1\0");
        hasher.update(secret.as_bytes());
        let key = hasher.finalize();
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// Encrypts `plain`; the output is nonce followed by ciphertext and tag.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce only fails for inputs beyond the cipher's length limit
        // (256 GiB); an empty output would then fail to open, which callers treat as an error.
        let sealed = self.cipher.encrypt(&nonce, plain).unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`MasterKey::seal`] produced.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() <= NONCE_LEN {
            return Err(CryptoError::Unsealable);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| CryptoError::Unsealable)
    }

    /// Decrypts to UTF-8 text.
    pub fn open_text(&self, sealed: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| CryptoError::Unsealable)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_other_keys_fail() {
        let a = MasterKey::new(&"a".repeat(40)).unwrap_or_else(|e| unreachable!("{e}"));
        let b = MasterKey::new(&"b".repeat(40)).unwrap_or_else(|e| unreachable!("{e}"));
        let sealed = a.seal(b"secret");
        assert_eq!(a.open(&sealed).ok().as_deref(), Some(&b"secret"[..]));
        assert_eq!(b.open(&sealed), Err(CryptoError::Unsealable));
        assert_eq!(a.open(&sealed[..10]), Err(CryptoError::Unsealable));
        assert_ne!(a.seal(b"secret"), sealed, "nonces are fresh");
    }

    #[test]
    fn short_master_keys_are_refused() {
        assert_eq!(
            MasterKey::new("short").err(),
            Some(CryptoError::WeakMasterKey)
        );
    }
}
