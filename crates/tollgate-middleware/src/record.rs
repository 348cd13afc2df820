//! What one call looks like on the wire, and the extensions a host service sets to enrich it.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

// The ingest API refuses a whole batch when one field is out of its bounds, so every record is
// clamped to them before it is queued (see `IngestEvent` in tollgate-console).
const MAX_PATH: usize = 2048;
const MAX_ROUTE: usize = 2048;
const MAX_USER_AGENT: usize = 1000;
const MAX_MODEL: usize = 200;
const MAX_ERROR: usize = 2000;
const MAX_TOKENS: u64 = 1_000_000_000_000;
const MAX_LATENCY_MS: f64 = 86_400_000.0;
const MIN_TS_MS: i64 = 946_684_800_000;

/// LLM usage of one call, set by the host service as a response extension
/// (`res.extensions_mut().insert(LlmUsage { .. })`) or through the request's [`UsageSlot`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmUsage {
    /// The model that answered.
    pub model: Option<String>,
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
    /// Total tokens; `None` means prompt + completion.
    pub total_tokens: Option<u64>,
    /// Prompt tokens served from a cache.
    pub cached_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Whether the counts were estimated rather than reported by the provider.
    pub estimated: bool,
    /// Cost in US dollars; `None` lets the tollgate server price it from its table.
    pub cost_usd: Option<f64>,
}

impl LlmUsage {
    /// Usage of `model` with the given prompt and completion tokens; everything else empty.
    pub fn new(model: impl Into<String>, prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            model: Some(model.into()),
            prompt_tokens,
            completion_tokens,
            ..Self::default()
        }
    }
}

/// A place in the request's extensions where a handler can leave the [`LlmUsage`] of a call whose
/// tokens are only known once its streamed body has been produced. The layer inserts one into
/// every request (`axum::Extension<UsageSlot>` extracts it) and reads it when the call is recorded,
/// at the end of the response body. A `LlmUsage` response extension takes precedence.
#[derive(Debug, Clone, Default)]
pub struct UsageSlot(Arc<Mutex<Option<LlmUsage>>>);

impl UsageSlot {
    /// Sets (or replaces) the usage to record for this call.
    pub fn set(&self, usage: LlmUsage) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(usage);
        }
    }

    /// The usage set so far.
    pub fn get(&self) -> Option<LlmUsage> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

/// The SHA-256 hex of the API key the caller presented, set by the host as a request (or
/// response) extension so that tollgate attributes the call to the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    /// The hash of a key as presented by the caller.
    pub fn of_key(key: &str) -> Self {
        Self(hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// An already computed hash: 64 hex characters, or `None`.
    pub fn from_hex(hash: &str) -> Option<Self> {
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(hash.to_ascii_lowercase()))
    }

    /// The lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A route name for the call (request or response extension); without one the reporter's
/// `service` label is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteName(pub String);

/// The client's address as the host knows it (request extension), for hosts behind a proxy that
/// resolve it themselves. Without one the layer uses `X-Forwarded-For` / `X-Real-IP` (only when
/// the reporter trusts them), then axum's `ConnectInfo<SocketAddr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// One usage event as the tollgate ingest API (`POST /api/v1/usage/events`) accepts it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UsageRecord {
    /// Unique id (UUID v7): a retried event is stored once.
    pub id: Uuid,
    /// When the call started, epoch milliseconds.
    pub ts: i64,
    /// SHA-256 hex of the key used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
    /// Route name (or the service label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path, without the query string.
    pub path: String,
    /// Status answered; 499 when the client went away before the answer was complete.
    pub status: u16,
    /// Time from the request entering the layer to the end of the response body, ms.
    pub latency_ms: f64,
    /// Time from the request entering the layer to the response head, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_latency_ms: Option<f64>,
    /// Client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Client user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// LLM model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Total tokens (the server uses prompt + completion when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// Cached prompt tokens.
    pub cached_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Whether the token counts were estimated.
    pub estimated: bool,
    /// Cost in US dollars (the server prices it when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Why the call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    source: &'static str,
}

impl UsageRecord {
    /// A record of a call that starts now, with a fresh id and everything else empty.
    pub fn new(method: impl Into<String>, path: impl Into<String>, status: u16) -> Self {
        Self {
            id: Uuid::now_v7(),
            ts: now_ms(),
            key_hash: None,
            route: None,
            method: method.into(),
            path: path.into(),
            status,
            latency_ms: 0.0,
            upstream_latency_ms: None,
            client_ip: None,
            user_agent: None,
            model: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: None,
            cached_tokens: 0,
            reasoning_tokens: 0,
            estimated: false,
            cost_usd: None,
            error: None,
            source: "middleware",
        }
    }

    /// Copies an [`LlmUsage`] into the record.
    pub fn with_llm_usage(mut self, usage: LlmUsage) -> Self {
        self.model = usage.model;
        self.prompt_tokens = usage.prompt_tokens;
        self.completion_tokens = usage.completion_tokens;
        self.total_tokens = usage.total_tokens;
        self.cached_tokens = usage.cached_tokens;
        self.reasoning_tokens = usage.reasoning_tokens;
        self.estimated = usage.estimated;
        self.cost_usd = usage.cost_usd;
        self
    }

    /// Brings every field within what the ingest API accepts, so that one odd call cannot get a
    /// whole batch refused.
    pub(crate) fn sanitize(&mut self) {
        let method: String = self
            .method
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(16)
            .collect();
        self.method = if method.is_empty() {
            "OTHER".to_owned()
        } else {
            method.to_ascii_uppercase()
        };
        if let Some(i) = self.path.find('?') {
            self.path.truncate(i);
        }
        if self.path.is_empty() {
            self.path.push('/');
        }
        truncate(&mut self.path, MAX_PATH);
        self.route = clean(self.route.take(), MAX_ROUTE);
        self.user_agent = clean(self.user_agent.take(), MAX_USER_AGENT);
        self.model = clean(self.model.take(), MAX_MODEL);
        self.error = clean(self.error.take(), MAX_ERROR);
        self.client_ip = self
            .client_ip
            .take()
            .filter(|ip| ip.parse::<IpAddr>().is_ok());
        self.key_hash = self
            .key_hash
            .take()
            .and_then(|h| ApiKeyHash::from_hex(&h))
            .map(|h| h.0);
        if !(100..=599).contains(&self.status) {
            self.status = 599.min(self.status.max(100));
        }
        self.ts = self.ts.max(MIN_TS_MS);
        self.latency_ms = clamp_ms(self.latency_ms);
        self.upstream_latency_ms = self.upstream_latency_ms.map(clamp_ms);
        for tokens in [
            &mut self.prompt_tokens,
            &mut self.completion_tokens,
            &mut self.cached_tokens,
            &mut self.reasoning_tokens,
        ] {
            *tokens = (*tokens).min(MAX_TOKENS);
        }
        self.total_tokens = self.total_tokens.map(|t| t.min(2 * MAX_TOKENS));
        self.cost_usd = self
            .cost_usd
            .filter(|c| c.is_finite() && (0.0..1e9).contains(c));
    }
}

fn clamp_ms(ms: f64) -> f64 {
    if ms.is_finite() {
        ms.clamp(0.0, MAX_LATENCY_MS)
    } else {
        0.0
    }
}

fn clean(text: Option<String>, max: usize) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(|mut t| {
        truncate(&mut t, max);
        t
    })
}

/// Cuts `text` to at most `max` characters, on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if let Some((i, _)) = text.char_indices().nth(max) {
        text.truncate(i);
    }
}

/// Now, epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_records_within_the_ingest_bounds() {
        let mut r = UsageRecord::new("M-SEARCH", "/a?b=c", 42);
        r.user_agent = Some("é".repeat(1500));
        r.client_ip = Some("not-an-ip".into());
        r.key_hash = Some("abc".into());
        r.latency_ms = f64::NAN;
        r.cost_usd = Some(-1.0);
        r.model = Some(String::new());
        r.sanitize();
        assert_eq!(r.method, "MSEARCH");
        assert_eq!(r.path, "/a");
        assert_eq!(r.status, 100);
        assert_eq!(
            r.user_agent.as_deref().map(|u| u.chars().count()),
            Some(1000)
        );
        assert_eq!(r.client_ip, None);
        assert_eq!(r.key_hash, None);
        assert_eq!(r.latency_ms, 0.0);
        assert_eq!(r.cost_usd, None);
        assert_eq!(r.model, None);
    }

    #[test]
    fn key_hash_is_sha256_hex() {
        let h = ApiKeyHash::of_key("ntk_test");
        assert_eq!(h.as_str().len(), 64);
        assert_eq!(ApiKeyHash::from_hex(&h.as_str().to_uppercase()), Some(h));
        assert_eq!(ApiKeyHash::from_hex("xyz"), None);
    }
}
