//! Key authentication: the key from the request headers, its checksum, and the cached look-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use moka::future::Cache;
use tollgate_core::{ApiKey, KeyHash};
use tollgate_store::{KeyRecord, Store, StoreError};

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

/// A cached look-up result, stamped with the cache generation it was loaded in.
#[derive(Debug)]
pub(crate) struct CachedKey {
    generation: u64,
    /// `None` is a negative entry: no key has this hash.
    pub(crate) record: Option<KeyRecord>,
}

/// The key cache in front of `store.key_by_hash`: bounded, with a TTL, negative entries, coalesced
/// concurrent misses, and emptied whole whenever the store's revision changes.
pub(crate) struct KeyCache {
    cache: Cache<KeyHash, Arc<CachedKey>>,
    // A load that started before an invalidation may finish after it and insert a stale record;
    // the generation stamp lets the next read notice and load again.
    generation: AtomicU64,
}

impl KeyCache {
    /// A cache of at most `capacity` keys, each kept at most `ttl`.
    pub(crate) fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            generation: AtomicU64::new(0),
        }
    }

    /// The key with this hash, from the cache or the store.
    pub(crate) async fn lookup(
        &self,
        store: &dyn Store,
        hash: &KeyHash,
    ) -> Result<Arc<CachedKey>, Arc<StoreError>> {
        let mut attempts = 0;
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            let entry = self
                .cache
                .try_get_with_by_ref(hash, async {
                    let record = store.key_by_hash(hash).await?;
                    Ok::<_, StoreError>(Arc::new(CachedKey { generation, record }))
                })
                .await?;
            attempts += 1;
            if entry.generation == self.generation.load(Ordering::Acquire) || attempts > 1 {
                return Ok(entry);
            }
            self.cache.invalidate(hash).await;
        }
    }

    /// Forgets every entry (the store's keys changed).
    pub(crate) fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }

    /// Approximate number of cached keys.
    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
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
