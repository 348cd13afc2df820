//! Key authentication: the key from the request headers and its checksum (the cached look-up is
//! in `keys`).

use http::HeaderMap;
use http::header::AUTHORIZATION;
use tollgate_core::{ApiKey, KeyHash};
use tollgate_store::KeyRecord;

use crate::error::GatewayError;

/// `X-API-Key` (OpenAI-style clients) and `x-api-key` (Anthropic clients): header names are
/// case-insensitive, so both spellings are this one name.
pub(crate) const X_API_KEY: &str = "x-api-key";
/// Azure OpenAI clients.
pub(crate) const API_KEY: &str = "api-key";

/// The key text of the first key header present: `Authorization: Bearer`, then `X-API-Key`, then
/// `api-key`. An `Authorization` header of another scheme is not a key.
pub(crate) fn presented_key(headers: &HeaderMap) -> Result<&str, GatewayError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let bytes = value.as_bytes();
        if bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ") {
            let text = std::str::from_utf8(&bytes[7..]).map_err(|_| GatewayError::InvalidApiKey)?;
            return Ok(text.trim());
        }
    }
    for name in [X_API_KEY, API_KEY] {
        if let Some(value) = headers.get(name) {
            let text = value.to_str().map_err(|_| GatewayError::InvalidApiKey)?;
            return Ok(text.trim());
        }
    }
    Err(GatewayError::MissingApiKey)
}

/// Checks the key's format and checksum (no look-up) and returns its look-up hash.
pub(crate) fn key_hash(text: &str) -> Result<KeyHash, GatewayError> {
    ApiKey::parse(text)
        .map(|key| key.hash())
        .map_err(|_| GatewayError::InvalidApiKey)
}

/// Refuses revoked and expired keys.
pub(crate) fn check_usable(record: &KeyRecord, now_ms: i64) -> Result<(), GatewayError> {
    if record.revoked_at_ms.is_some() {
        return Err(GatewayError::RevokedApiKey);
    }
    if record.expires_at_ms.is_some_and(|at| at <= now_ms) {
        return Err(GatewayError::ExpiredApiKey);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn headers_are_tried_in_the_documented_order() {
        let h = headers(&[
            ("authorization", "Bearer a"),
            ("x-api-key", "b"),
            ("api-key", "c"),
        ]);
        assert_eq!(presented_key(&h), Ok("a"));
        let h = headers(&[
            ("authorization", "Basic xyz"),
            ("x-api-key", "b"),
            ("api-key", "c"),
        ]);
        assert_eq!(presented_key(&h), Ok("b"));
        let h = headers(&[("api-key", " c ")]);
        assert_eq!(presented_key(&h), Ok("c"));
        let h = headers(&[("authorization", "bearer  d")]);
        assert_eq!(presented_key(&h), Ok("d"));
        assert_eq!(
            presented_key(&headers(&[])),
            Err(GatewayError::MissingApiKey)
        );
        let h = headers(&[("authorization", "Basic xyz")]);
        assert_eq!(presented_key(&h), Err(GatewayError::MissingApiKey));
    }

    #[test]
    fn garbage_keys_are_refused_before_any_look_up() {
        assert_eq!(key_hash("ntk_nope"), Err(GatewayError::InvalidApiKey));
        let key = ApiKey::generate();
        assert_eq!(key_hash(key.expose()), Ok(key.hash()));
    }
}
