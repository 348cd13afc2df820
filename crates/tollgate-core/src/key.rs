//! API keys: `ntk_` + 30 random base62 characters + 6 base62 characters of a CRC32 of the random part.
//!
//! The checksum lets the gateway refuse typos and garbage without a store look-up, and lets secret
//! scanners recognise the format. Keys are stored as the SHA-256 of the whole key ([`KeyHash`]).

use std::fmt;

use rand::Rng;
use sha2::{Digest, Sha256};

/// The prefix every tollgate API key starts with.
pub const KEY_PREFIX: &str = "ntk_";
/// The prefix of personal access tokens.
pub const PAT_PREFIX: &str = "tgp_";
/// The prefix of edge access tokens, which read only the edge key snapshot and change feed.
pub const EDGE_TOKEN_PREFIX: &str = "tge_";
const RANDOM_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
/// Total length of a key, prefix included.
pub const KEY_LEN: usize = 4 + RANDOM_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a presented key was refused before any look-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not `ntk_` + 36 base62 characters.
    #[error("the key is not in the ntk_ format")]
    Malformed,
    /// The format is right but the checksum does not match: a typo or a made-up key.
    #[error("the key's checksum does not match")]
    BadChecksum,
}

/// A full secret key (API key or personal access token). Its `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Generates a fresh random API key.
    pub fn generate() -> Self {
        Self::generate_with_prefix(KEY_PREFIX)
    }

    /// Generates a fresh random personal access token (`tgp_…`).
    pub fn generate_pat() -> Self {
        Self::generate_with_prefix(PAT_PREFIX)
    }

    /// Generates a fresh random edge access token (`tge_…`).
    pub fn generate_edge_token() -> Self {
        Self::generate_with_prefix(EDGE_TOKEN_PREFIX)
    }

    fn generate_with_prefix(prefix: &str) -> Self {
        let mut rng = rand::rng();
        let random: String = (0..RANDOM_LEN)
            .map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())]))
            .collect();
        let checksum = checksum(&random);
        Self(format!("{prefix}{random}{checksum}"))
    }

    /// Checks the format and checksum of a presented API key, without any look-up.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        Self::parse_with_prefix(text, KEY_PREFIX)
    }

    /// Checks the format and checksum of a presented personal access token.
    pub fn parse_pat(text: &str) -> Result<Self, KeyError> {
        Self::parse_with_prefix(text, PAT_PREFIX)
    }

    /// Checks the format and checksum of a presented edge access token.
    pub fn parse_edge_token(text: &str) -> Result<Self, KeyError> {
        Self::parse_with_prefix(text, EDGE_TOKEN_PREFIX)
    }

    fn parse_with_prefix(text: &str, prefix: &str) -> Result<Self, KeyError> {
        let body = text.strip_prefix(prefix).ok_or(KeyError::Malformed)?;
        if body.len() != RANDOM_LEN + CHECKSUM_LEN
            || !body.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(KeyError::Malformed);
        }
        let (random, sum) = body.split_at(RANDOM_LEN);
        if checksum(random) != sum {
            return Err(KeyError::BadChecksum);
        }
        Ok(Self(text.to_owned()))
    }

    /// The secret itself: only for showing once at creation, or for encrypting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 look-up hash.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }

    /// The display form, e.g. `ntk_AbCd…wxyz`: enough to recognise a key, useless to an attacker.
    pub fn display_prefix(&self) -> String {
        let s = &self.0;
        let head = &s[..8.min(s.len())];
        let tail = &s[s.len().saturating_sub(4)..];
        format!("{head}…{tail}")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

fn checksum(random: &str) -> String {
    let mut n = u64::from(crc32fast::hash(random.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// Lower-case hex SHA-256 of a full key: the store's look-up value and the `token_hash` edge
/// reporters send.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyHash(String);

impl KeyHash {
    /// Hashes a secret.
    pub fn of(secret: &str) -> Self {
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyHash {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let lower = value.to_ascii_lowercase();
        if lower.len() == 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(lower))
        } else {
            Err("a key hash is 64 hexadecimal characters (SHA-256)".to_owned())
        }
    }
}

impl From<KeyHash> for String {
    fn from(value: KeyHash) -> Self {
        value.0
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", &self.0[..12.min(self.0.len())])
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        for _ in 0..200 {
            let key = ApiKey::generate();
            assert_eq!(key.expose().len(), KEY_LEN);
            assert!(key.expose().starts_with("ntk_"));
            assert_eq!(ApiKey::parse(key.expose()), Ok(key.clone()));
        }
    }

    #[test]
    fn a_single_typo_is_caught_by_the_checksum() {
        let key = ApiKey::generate();
        let mut bytes = key.expose().as_bytes().to_vec();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(ApiKey::parse(&typo), Err(KeyError::BadChecksum));
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            "",
            "ntk_",
            "sk-abc",
            "ntk_short",
            &format!("ntk_{}", "!".repeat(36)),
        ] {
            assert_eq!(ApiKey::parse(bad), Err(KeyError::Malformed), "{bad}");
        }
        let pat = ApiKey::generate_pat();
        assert_eq!(ApiKey::parse(pat.expose()), Err(KeyError::Malformed));
        assert!(ApiKey::parse_pat(pat.expose()).is_ok());
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(&key.expose()[4..]));
        assert!(!format!("{:?}", key.hash()).contains(key.hash().as_str()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            KeyHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(KeyHash::try_from("XYZ".to_owned()).is_err());
        assert!(
            KeyHash::try_from(
                "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD".to_owned()
            )
            .is_ok()
        );
    }

    #[test]
    fn display_prefix_hides_the_middle() {
        let key = ApiKey::generate();
        let shown = key.display_prefix();
        assert!(shown.starts_with("ntk_") && shown.contains('…'));
        assert_eq!(shown.chars().count(), 13);
    }
}
