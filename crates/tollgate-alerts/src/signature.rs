//! The webhook signature: HMAC-SHA256 with the channel secret over `"<timestamp>.<body>"`.
//!
//! Written to be copied: [`verify`] depends on `hmac`, `sha2` and `hex` only.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying `sha256=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "X-Tollgate-Signature";
/// The header carrying the Unix time (seconds) the signature was made.
pub const TIMESTAMP_HEADER: &str = "X-Tollgate-Timestamp";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps the lint happy.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Tollgate-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("sha256={}", hex::encode(tag))
}

/// Why a delivery did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp header is not a whole number of seconds.
    #[error("X-Tollgate-Timestamp is not a Unix time in seconds")]
    BadTimestamp,
    /// The timestamp is further from the receiver's clock than it accepts (a replay, or a clock
    /// that is off).
    #[error("X-Tollgate-Timestamp is {0} s away from now, more than allowed")]
    Stale(i64),
    /// The signature header is not `sha256=` followed by 64 hex digits.
    #[error("X-Tollgate-Signature is not `sha256=<64 hex digits>`")]
    BadSignatureFormat,
    /// The signature does not match the body and timestamp under this secret.
    #[error("X-Tollgate-Signature does not match the body")]
    Mismatch,
}

/// Checks a delivery as a receiver gets it: the two header values, the raw body, the receiver's
/// clock (`now_secs`, Unix seconds) and how far the timestamp may be from it (300 s is usual).
/// The comparison is constant-time.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let timestamp = timestamp.trim();
    let sent: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now_secs.saturating_sub(sent).saturating_abs();
    if skew > tolerance_secs {
        return Err(VerifyError::Stale(skew));
    }
    let tag = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_tag| hex::decode(hex_tag).ok())
        .filter(|tag| tag.len() == 32)
        .ok_or(VerifyError::BadSignatureFormat)?;
    mac(secret, timestamp, body)
        .verify_slice(&tag)
        .map_err(|_| VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"kind":"test"}"#;
        let sig = sign("whsec_abc", 1_000, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        assert_eq!(verify("whsec_abc", "1000", &sig, body, 1_010, 300), Ok(()));
        assert_eq!(
            verify("whsec_abd", "1000", &sig, body, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_abc", "1001", &sig, body, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_abc", "1000", &sig, br#"{"kind":"tesT"}"#, 1_010, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_abc", "1000", &sig, body, 2_000, 300),
            Err(VerifyError::Stale(1_000))
        );
        assert_eq!(
            verify("whsec_abc", "soon", &sig, body, 1_000, 300),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify("whsec_abc", "1000", "sha1=00", body, 1_000, 300),
            Err(VerifyError::BadSignatureFormat)
        );
        assert_eq!(
            verify("whsec_abc", "1000", &sig[..20], body, 1_000, 300),
            Err(VerifyError::BadSignatureFormat)
        );
    }

    #[test]
    fn the_scheme_matches_an_independent_implementation() {
        // Computed with Python's `hmac.new(b"whsec_test", b'1765000000.{"kind":"test"}',
        // hashlib.sha256).hexdigest()`: what a receiver in another language computes.
        assert_eq!(
            sign("whsec_test", 1_765_000_000, br#"{"kind":"test"}"#),
            "sha256=2d56fcf277ddef915fd9f64fcfb4ba3953aefb560e7e65333d4b3cbceb5b61eb"
        );
    }
}
