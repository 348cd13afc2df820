//! Encryption at rest for revealable key copies, upstream credentials and the ingest secret
//! (XChaCha20-Poly1305).
//!
//! The sealing key is derived from the configured master secret with HKDF-SHA256. A sealed value
//! (format v2) is `0x02 ‖ nonce ‖ ciphertext+tag`, and is bound to the row that holds it: the row
//! ([`SealedRow`]) is the cipher's associated data, so a value copied into another row does not
//! open. Values sealed before (v1: `nonce ‖ ciphertext+tag`, SHA-256-derived key, no row binding)
//! still open, and are written as v2 the next time they are written.

use std::fmt;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::KeyHash;

const NONCE_LEN: usize = 24;
/// First byte of a v2 sealed value.
const V2: u8 = 2;
/// HKDF salt: fixed, since the master secret is already high-entropy; it separates tollgate's
/// keys from any other use of the same secret.
const HKDF_SALT: &[u8] = b"tollgate/master-key/v2";
/// HKDF info of the sealing key.
const HKDF_INFO_SEALING: &[u8] = b"tollgate/sealing-key/xchacha20poly1305";
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
    /// The ciphertext was not made with this master key for this row, or was altered.
    #[error("the sealed value cannot be opened with this master key")]
    Unsealable,
}

/// The row a sealed value belongs to; it is bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub enum SealedRow<'a> {
    /// The revealable copy of the API key with this hash: `key:<key hash>`.
    ApiKey(&'a KeyHash),
    /// The upstream credential of the route with this id: `route-credential:<route id>`.
    RouteCredential(i64),
    /// The credential of the model-routing target with this id: `target-credential:<target id>`.
    TargetCredential(i64),
    /// An instance setting by name, e.g. `setting:ingest_secret`.
    Setting(&'a str),
}

impl SealedRow<'_> {
    /// The associated data bound into the ciphertext.
    fn aad(&self) -> Vec<u8> {
        match self {
            Self::ApiKey(hash) => format!("key:{}", hash.as_str()),
            Self::RouteCredential(id) => format!("route-credential:{id}"),
            Self::TargetCredential(id) => format!("target-credential:{id}"),
            Self::Setting(name) => format!("setting:{name}"),
        }
        .into_bytes()
    }
}

/// An opened value and whether it should be sealed again in the current format.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// The plain bytes.
    pub plain: Vec<u8>,
    /// Sealed in the old (v1, unbound) format: write it again with [`MasterKey::seal`].
    pub legacy: bool,
}

/// The instance master key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct MasterKey {
    /// Seals and opens v2 values (HKDF-derived key, row-bound).
    cipher: XChaCha20Poly1305,
    /// Opens v1 values only (SHA-256-derived key, no associated data).
    legacy: XChaCha20Poly1305,
}

impl MasterKey {
    /// Derives the cipher keys from the configured master secret.
    pub fn new(secret: &str) -> Result<Self, CryptoError> {
        if secret.chars().count() < MIN_MASTER_KEY_LEN {
            return Err(CryptoError::WeakMasterKey);
        }
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.as_bytes())
            .expand(HKDF_INFO_SEALING, &mut key)
            // 32 bytes is far below HKDF-SHA256's limit of 255 × 32.
            .map_err(|_| CryptoError::WeakMasterKey)?;
        let mut hasher = Sha256::new();
        hasher.update(b"tollgate master key v1\0");
        hasher.update(secret.as_bytes());
        let legacy_key = hasher.finalize();
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            legacy: XChaCha20Poly1305::new(&legacy_key),
        })
    }

    /// Encrypts `plain` for `row` (format v2): version byte, nonce, ciphertext and tag.
    pub fn seal(&self, plain: &[u8], row: SealedRow<'_>) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = row.aad();
        // Encryption with a fresh nonce only fails for inputs beyond the cipher's length limit
        // (256 GiB); an empty output would then fail to open, which callers treat as an error.
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(V2);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same `row`, or a v1 value.
    pub fn open(&self, sealed: &[u8], row: SealedRow<'_>) -> Result<Opened, CryptoError> {
        if let Some((&V2, rest)) = sealed.split_first()
            && rest.len() > NONCE_LEN
        {
            let (nonce, body) = rest.split_at(NONCE_LEN);
            let aad = row.aad();
            if let Ok(plain) = self.cipher.decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            ) {
                return Ok(Opened {
                    plain,
                    legacy: false,
                });
            }
        }
        // A v1 value starts with a random nonce, so one in 256 starts like v2: try v1 too. A v2
        // value never opens as v1 (another key), so a moved v2 value still fails.
        if sealed.len() <= NONCE_LEN {
            return Err(CryptoError::Unsealable);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.legacy
            .decrypt(XNonce::from_slice(nonce), body)
            .map(|plain| Opened {
                plain,
                legacy: true,
            })
            .map_err(|_| CryptoError::Unsealable)
    }

    /// Decrypts to UTF-8 text.
    pub fn open_text(&self, sealed: &[u8], row: SealedRow<'_>) -> Result<String, CryptoError> {
        String::from_utf8(self.open(sealed, row)?.plain).map_err(|_| CryptoError::Unsealable)
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

    fn key(c: &str) -> MasterKey {
        MasterKey::new(&c.repeat(40)).unwrap_or_else(|e| unreachable!("{e}"))
    }

    /// What the v1 code wrote: SHA-256-derived key, `nonce ‖ ciphertext`, no associated data.
    fn seal_v1(secret: &str, plain: &[u8]) -> Vec<u8> {
        let mut hasher = Sha256::new();
        hasher.update(b"tollgate master key v1\0");
        hasher.update(secret.as_bytes());
        let cipher = XChaCha20Poly1305::new(&hasher.finalize());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(cipher.encrypt(&nonce, plain).unwrap_or_default());
        out
    }

    #[test]
    fn seal_then_open_round_trips_and_other_keys_fail() {
        let (a, b) = (key("a"), key("b"));
        let row = SealedRow::RouteCredential(7);
        let sealed = a.seal(b"secret", row);
        assert_eq!(sealed[0], V2);
        assert_eq!(
            a.open(&sealed, row),
            Ok(Opened {
                plain: b"secret".to_vec(),
                legacy: false
            })
        );
        assert_eq!(b.open(&sealed, row), Err(CryptoError::Unsealable));
        assert_eq!(a.open(&sealed[..10], row), Err(CryptoError::Unsealable));
        assert_eq!(a.open(&[], row), Err(CryptoError::Unsealable));
        assert_ne!(a.seal(b"secret", row), sealed, "nonces are fresh");
    }

    #[test]
    fn a_value_moved_to_another_row_does_not_open() {
        let a = key("a");
        let hash = KeyHash::of("ntk_one");
        let other = KeyHash::of("ntk_two");
        let rows = [
            SealedRow::ApiKey(&hash),
            SealedRow::ApiKey(&other),
            SealedRow::RouteCredential(1),
            SealedRow::RouteCredential(2),
            SealedRow::Setting("ingest_secret"),
            SealedRow::Setting("other"),
        ];
        for (i, sealed_for) in rows.iter().enumerate() {
            let sealed = a.seal(b"secret", *sealed_for);
            for (j, opened_as) in rows.iter().enumerate() {
                assert_eq!(
                    a.open(&sealed, *opened_as).is_ok(),
                    i == j,
                    "{sealed_for:?} opened as {opened_as:?}"
                );
            }
        }
    }

    #[test]
    fn v1_values_still_open_and_are_marked_legacy() {
        let secret = "a".repeat(40);
        let a = key("a");
        // Enough values that some nonces start with the v2 byte.
        for i in 0..600u32 {
            let plain = format!("old secret {i}");
            let sealed = seal_v1(&secret, plain.as_bytes());
            assert_eq!(
                a.open(&sealed, SealedRow::RouteCredential(1)),
                Ok(Opened {
                    plain: plain.into_bytes(),
                    legacy: true
                }),
                "value {i}"
            );
        }
        assert_eq!(
            key("b").open(&seal_v1(&secret, b"x"), SealedRow::Setting("s")),
            Err(CryptoError::Unsealable)
        );
    }

    #[test]
    fn the_sealing_key_is_hkdf_not_the_v1_hash() {
        let a = key("a");
        let row = SealedRow::Setting("ingest_secret");
        let sealed = a.seal(b"secret", row);
        // The v2 body does not open with the v1 key, even without associated data.
        assert!(
            a.legacy
                .decrypt(
                    XNonce::from_slice(&sealed[1..=NONCE_LEN]),
                    &sealed[1 + NONCE_LEN..]
                )
                .is_err()
        );
    }

    #[test]
    fn short_master_keys_are_refused() {
        assert_eq!(
            MasterKey::new("short").err(),
            Some(CryptoError::WeakMasterKey)
        );
    }
}
