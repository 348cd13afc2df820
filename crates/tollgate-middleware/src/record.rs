//! What one call looks like on the wire, and the extensions a host service sets to enrich it.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};
// The ingest API refuses a whole batch when one field is out of its bounds, so every record is
// clamped to the bounds the server itself checks before it is queued.
use tollgate_core::ingest::{
    IngestEvent, MAX_COST_USD, MAX_ERROR_CHARS, MAX_LATENCY_MS, MAX_METHOD_LEN, MAX_MODEL_CHARS,
    MAX_PATH_CHARS, MAX_ROUTE_CHARS, MAX_TOKENS, MAX_TOTAL_TOKENS, MAX_USER_AGENT_CHARS, MIN_TS_MS,
    STATUS_RANGE,
};
use tollgate_core::time::now_ms;
use uuid::Uuid;

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

/// One usage event as the host service and the layer build it; it goes on the wire as the ingest
/// API's (`POST /api/v1/usage/events`) [`IngestEvent`], which it serialises as.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(into = "IngestEvent")]
pub struct UsageRecord {
    /// Unique id (UUID v7): a retried event is stored once.
    pub id: Uuid,
    /// When the call started, epoch milliseconds.
    pub ts: i64,
    /// SHA-256 hex of the key used.
    pub key_hash: Option<String>,
    /// Route name (or the service label).
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
    pub upstream_latency_ms: Option<f64>,
    /// Time from the request entering the layer to the end of the inner service's body, ms;
    /// `None` when it did not end (the client went away, or the body failed).
    pub upstream_last_byte_ms: Option<f64>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// LLM model.
    pub model: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Total tokens (the server uses prompt + completion when absent).
    pub total_tokens: Option<u64>,
    /// Cached prompt tokens.
    pub cached_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Whether the token counts were estimated.
    pub estimated: bool,
    /// Cost in US dollars (the server prices it when absent).
    pub cost_usd: Option<f64>,
    /// Why the call failed.
    pub error: Option<String>,
    source: &'static str,
}

impl From<UsageRecord> for IngestEvent {
    fn from(r: UsageRecord) -> Self {
        Self {
            id: Some(r.id.to_string()),
            ts: r.ts,
            key_hash: r.key_hash,
            key_id: None,
            route: r.route,
            method: r.method,
            path: r.path,
            status: Some(r.status),
            latency_ms: r.latency_ms,
            upstream_latency_ms: r.upstream_latency_ms,
            upstream_last_byte_ms: r.upstream_last_byte_ms,
            client_ip: r.client_ip,
            user_agent: r.user_agent,
            model: r.model,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            total_tokens: r.total_tokens,
            cached_tokens: r.cached_tokens,
            reasoning_tokens: r.reasoning_tokens,
            estimated: r.estimated,
            cost_usd: r.cost_usd,
            error: r.error,
            source: Some(r.source.to_owned()),
        }
    }
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
            upstream_last_byte_ms: None,
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
            .take(MAX_METHOD_LEN)
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
        truncate(&mut self.path, MAX_PATH_CHARS);
        self.route = clean(self.route.take(), MAX_ROUTE_CHARS);
        self.user_agent = clean(self.user_agent.take(), MAX_USER_AGENT_CHARS);
        self.model = clean(self.model.take(), MAX_MODEL_CHARS);
        self.error = clean(self.error.take(), MAX_ERROR_CHARS);
        self.client_ip = self
            .client_ip
            .take()
            .filter(|ip| ip.parse::<IpAddr>().is_ok());
        self.key_hash = self
            .key_hash
            .take()
            .and_then(|h| ApiKeyHash::from_hex(&h))
            .map(|h| h.0);
        self.status = self
            .status
            .clamp(*STATUS_RANGE.start(), *STATUS_RANGE.end());
        self.ts = self.ts.max(MIN_TS_MS);
        self.latency_ms = clamp_ms(self.latency_ms);
        self.upstream_latency_ms = self.upstream_latency_ms.map(clamp_ms);
        self.upstream_last_byte_ms = self.upstream_last_byte_ms.map(clamp_ms);
        for tokens in [
            &mut self.prompt_tokens,
            &mut self.completion_tokens,
            &mut self.cached_tokens,
            &mut self.reasoning_tokens,
        ] {
            *tokens = (*tokens).min(MAX_TOKENS);
        }
        self.total_tokens = self.total_tokens.map(|t| t.min(MAX_TOTAL_TOKENS));
        self.cost_usd = self
            .cost_usd
            .filter(|c| c.is_finite() && (0.0..MAX_COST_USD).contains(c));
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
    fn a_record_goes_on_the_wire_as_the_shared_ingest_event() {
        let r = UsageRecord::new("GET", "/a", 200);
        let json = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "ts",
                "method",
                "path",
                "status",
                "latency_ms",
                "prompt_tokens",
                "completion_tokens",
                "cached_tokens",
                "reasoning_tokens",
                "estimated",
                "source"
            ]
        );
        assert_eq!(json["id"], r.id.to_string());
        assert_eq!(json["source"], "middleware");
        // What the server parses is what the layer meant.
        let parsed: IngestEvent = serde_json::from_value(json).unwrap();
        assert_eq!(parsed, IngestEvent::from(r));
    }

    #[test]
    fn key_hash_is_sha256_hex() {
        let h = ApiKeyHash::of_key("ntk_test");
        assert_eq!(h.as_str().len(), 64);
        assert_eq!(ApiKeyHash::from_hex(&h.as_str().to_uppercase()), Some(h));
        assert_eq!(ApiKeyHash::from_hex("xyz"), None);
    }
}
