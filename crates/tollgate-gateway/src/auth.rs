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

/// The header a key was presented in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `Authorization: Bearer …`
    Authorization,
    /// `X-API-Key` / `x-api-key`
    XApiKey,
    /// `api-key`
    ApiKey,
}

impl KeySource {
    /// The header's name, to remove it before forwarding.
    pub(crate) fn header(self) -> &'static str {
        match self {
            Self::Authorization => "authorization",
            Self::XApiKey => X_API_KEY,
            Self::ApiKey => API_KEY,
        }
    }
}

/// A key as the client sent it, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PresentedKey<'a> {
    pub(crate) text: &'a str,
    pub(crate) source: KeySource,
}

/// The key of a request. `Authorization: Bearer ntk_…` comes first; then `X-API-Key`, then
/// `api-key`. When `Authorization` holds something that is not a tollgate key (the caller's own
/// upstream token, Basic credentials), a tollgate key in `X-API-Key` or `api-key` is used and that
/// `Authorization` is the upstream's business. A bearer value with no other key header is still
/// tried as a key, so that a wrong key is told `invalid_api_key`, not `missing_api_key`.
pub(crate) fn presented_key(headers: &HeaderMap) -> Result<PresentedKey<'_>, GatewayError> {
    let bearer = headers.get(AUTHORIZATION).and_then(|value| {
        let bytes = value.as_bytes();
        (bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ")).then(|| {
            std::str::from_utf8(&bytes[7..])
                .map(str::trim)
                .map_err(|_| GatewayError::InvalidApiKey)
        })
    });
    if let Some(Ok(text)) = bearer
        && looks_like_key(text.as_bytes())
    {
        return Ok(PresentedKey {
            text,
            source: KeySource::Authorization,
        });
    }
    for source in [KeySource::XApiKey, KeySource::ApiKey] {
        if let Some(value) = headers.get(source.header()) {
            let text = value
                .to_str()
                .map_err(|_| GatewayError::InvalidApiKey)?
                .trim();
            if bearer.is_none() || looks_like_key(text.as_bytes()) {
                return Ok(PresentedKey { text, source });
            }
        }
    }
    match bearer {
        Some(text) => text.map(|text| PresentedKey {
            text,
            source: KeySource::Authorization,
        }),
        None => Err(GatewayError::MissingApiKey),
    }
}

/// Whether a header value is, or carries as a bearer token, something in the tollgate key format
/// (`ntk_…`). Such values are never forwarded upstream, whichever header holds them.
pub(crate) fn holds_key(value: &[u8]) -> bool {
    let token = if value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer ") {
        &value[7..]
    } else {
        value
    };
    looks_like_key(token.trim_ascii())
}

fn looks_like_key(text: &[u8]) -> bool {
    text.len() >= KEY_PREFIX.len() && text[..KEY_PREFIX.len()].eq_ignore_ascii_case(KEY_PREFIX)
}

/// The start of every tollgate key.
const KEY_PREFIX: &[u8] = b"ntk_";

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

    fn presented(h: &HeaderMap) -> Result<(&str, KeySource), GatewayError> {
        presented_key(h).map(|p| (p.text, p.source))
    }

    #[test]
    fn headers_are_tried_in_the_documented_order() {
        use KeySource::*;
        let h = headers(&[
            ("authorization", "Bearer a"),
            ("x-api-key", "b"),
            ("api-key", "c"),
        ]);
        assert_eq!(presented(&h), Ok(("a", Authorization)));
        let h = headers(&[
            ("authorization", "Basic xyz"),
            ("x-api-key", "b"),
            ("api-key", "c"),
        ]);
        assert_eq!(presented(&h), Ok(("b", XApiKey)));
        let h = headers(&[("api-key", " c ")]);
        assert_eq!(presented(&h), Ok(("c", ApiKey)));
        let h = headers(&[("authorization", "bearer  d")]);
        assert_eq!(presented(&h), Ok(("d", Authorization)));
        assert_eq!(presented(&headers(&[])), Err(GatewayError::MissingApiKey));
        let h = headers(&[("authorization", "Basic xyz")]);
        assert_eq!(presented(&h), Err(GatewayError::MissingApiKey));
    }

    #[test]
    fn a_tollgate_key_beside_a_foreign_bearer_token_is_the_key() {
        use KeySource::*;
        let h = headers(&[
            ("authorization", "Bearer sk-upstream-own"),
            ("x-api-key", "ntk_abc"),
        ]);
        assert_eq!(presented(&h), Ok(("ntk_abc", XApiKey)));
        let h = headers(&[("authorization", "Bearer sk-own"), ("api-key", "ntk_abc")]);
        assert_eq!(presented(&h), Ok(("ntk_abc", ApiKey)));
        // A bearer tollgate key still wins over the other headers.
        let h = headers(&[
            ("authorization", "Bearer ntk_one"),
            ("x-api-key", "ntk_two"),
        ]);
        assert_eq!(presented(&h), Ok(("ntk_one", Authorization)));
        // A foreign bearer token alone is tried (and refused as invalid, not missing).
        let h = headers(&[("authorization", "Bearer sk-own"), ("x-api-key", "other")]);
        assert_eq!(presented(&h), Ok(("sk-own", Authorization)));
        assert!(holds_key(b"Bearer  ntk_x "));
        assert!(holds_key(b"NTK_x"));
        assert!(!holds_key(b"Bearer sk-x"));
    }

    #[test]
    fn garbage_keys_are_refused_before_any_look_up() {
        assert_eq!(key_hash("ntk_nope"), Err(GatewayError::InvalidApiKey));
        let key = ApiKey::generate();
        assert_eq!(key_hash(key.expose()), Ok(key.hash()));
    }
}
