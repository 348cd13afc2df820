//! Usage events: one per call, from the gateway, from ingest, or from the in-process middleware.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::key::KeyHash;

/// Where a usage event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    /// Recorded by this instance's gateway.
    #[default]
    Gateway,
    /// Reported by an edge gateway or another proxy through the ingest API.
    Ingest,
    /// Reported by the in-process middleware of another service.
    Middleware,
}

impl UsageSource {
    /// The name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Ingest => "ingest",
            Self::Middleware => "middleware",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gateway" => Some(Self::Gateway),
            "ingest" => Some(Self::Ingest),
            "middleware" => Some(Self::Middleware),
            _ => None,
        }
    }
}

/// LLM token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenUsage {
    /// Input tokens (OpenAI `prompt_tokens`, Anthropic `input_tokens` + cache tokens).
    pub prompt: i64,
    /// Output tokens.
    pub completion: i64,
    /// prompt + completion, as the provider reported it.
    pub total: i64,
    /// Input tokens served from the provider's cache.
    pub cached: i64,
    /// Output tokens spent on reasoning.
    pub reasoning: i64,
}

impl TokenUsage {
    /// Whether any figure is non-zero.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    /// Unique id: a repeated id is stored once (spool replay and ingest retries rely on it).
    pub event_id: Uuid,
    /// When the call started, epoch milliseconds.
    pub ts_ms: i64,
    /// The key used, when it was valid.
    pub key_id: Option<i64>,
    /// The hash of the key presented, when one was recognised.
    pub key_hash: Option<KeyHash>,
    /// The key's team.
    pub team_id: Option<i64>,
    /// The matched route.
    pub route_id: Option<i64>,
    /// The route's name, or the reporter's route path.
    pub route: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path (no query string).
    pub path: String,
    /// Status sent to the client; 499 when the client hung up first.
    pub status: u16,
    /// Total time in the gateway, microseconds.
    pub latency_us: i64,
    /// Time until the upstream's response head arrived, microseconds.
    pub upstream_latency_us: Option<i64>,
    /// Time until the upstream's last byte arrived, microseconds, counted from the same moment
    /// as `upstream_latency_us`; `None` when the upstream's answer did not end (client hung up,
    /// upstream error or timeout) or the reporter did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_last_byte_us: Option<i64>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// LLM model requested.
    pub model: Option<String>,
    /// LLM token counts.
    #[serde(default)]
    pub tokens: TokenUsage,
    /// Whether the token counts were estimated with a tokenizer rather than reported.
    #[serde(default)]
    pub estimated: bool,
    /// Cost in US dollars from the prices in force; `None` ("no price") when the call used
    /// tokens of a model without a price, never a made-up zero.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Why the call failed, when it did.
    pub error: Option<String>,
    /// Who recorded it.
    #[serde(default)]
    pub source: UsageSource,
    /// The `X-Request-Id` of the call.
    pub request_id: Option<String>,
    /// On `llm` routes, every upstream attempt of the call as a JSON array of
    /// `{"target","model","status","ms"}`; `None` elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<String>,
}

impl UsageEvent {
    /// An event with a fresh id and the given essentials; everything else empty.
    pub fn new(
        ts_ms: i64,
        method: impl Into<String>,
        path: impl Into<String>,
        status: u16,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            ts_ms,
            key_id: None,
            key_hash: None,
            team_id: None,
            route_id: None,
            route: None,
            method: method.into(),
            path: path.into(),
            status,
            latency_us: 0,
            upstream_latency_us: None,
            upstream_last_byte_us: None,
            client_ip: None,
            user_agent: None,
            model: None,
            tokens: TokenUsage::default(),
            estimated: false,
            cost_usd: Some(0.0),
            error: None,
            source: UsageSource::Gateway,
            request_id: None,
            attempts: None,
        }
    }

    /// An id derived from what the event says (UUID v8 from a SHA-256 of its canonical content),
    /// for reported events that carry no id of their own: the same report sent twice gets the same
    /// id and is stored once. Covers every reported field except the id and the cost (which may
    /// come from the price table in force rather than from the reporter).
    pub fn content_id(&self) -> Uuid {
        // A JSON array in a fixed order: unambiguous, and independent of how the reporter ordered
        // or spaced its fields.
        let mut canonical = serde_json::json!([
            "tollgate-usage-event-v1",
            self.ts_ms,
            self.key_hash.as_ref().map(KeyHash::as_str),
            self.route,
            self.method,
            self.path,
            self.status,
            self.latency_us,
            self.upstream_latency_us,
            self.client_ip,
            self.user_agent,
            self.model,
            [
                self.tokens.prompt,
                self.tokens.completion,
                self.tokens.total,
                self.tokens.cached,
                self.tokens.reasoning,
            ],
            self.estimated,
            self.error,
            self.source.as_str(),
            self.request_id,
        ]);
        // Added later: only an event that says it extends the array, so that the ids of reports
        // without it stay what they were.
        if let (Some(last_byte), Some(fields)) =
            (self.upstream_last_byte_us, canonical.as_array_mut())
        {
            fields.push(last_byte.into());
        }
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    /// 2, 3, 4 or 5 for the status class; 0 for anything else.
    pub fn status_class(&self) -> i16 {
        status_class(self.status)
    }

    /// Whether the call counts as an error (4xx, 5xx, 499).
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }
}

/// The status of a reported call whose reporter did not say: status class 0, neither a success
/// nor an error.
pub const UNKNOWN_STATUS: u16 = 0;

/// 2, 3, 4 or 5 for the status class; 0 for anything else.
pub fn status_class(status: u16) -> i16 {
    match status {
        100..=599 => i16::try_from(status / 100).unwrap_or(0),
        _ => 0,
    }
}

/// Upper bounds (milliseconds, inclusive) of the latency histogram buckets kept in hourly roll-ups.
/// The last bucket holds everything slower. Percentiles are read within a bucket's resolution.
pub const LATENCY_BUCKETS_MS: [f64; 23] = [
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 25.0, 40.0, 60.0, 100.0, 150.0, 250.0, 400.0, 600.0,
    1000.0, 1500.0, 2500.0, 4000.0, 6000.0, 10000.0, 30000.0,
];
/// Number of histogram buckets (bounded ones plus the overflow bucket).
pub const HISTOGRAM_LEN: usize = LATENCY_BUCKETS_MS.len() + 1;

/// The histogram bucket a latency falls in.
pub fn latency_bucket(latency_us: i64) -> usize {
    #[expect(
        clippy::cast_precision_loss,
        reason = "latencies are far below 2^52 µs"
    )]
    let ms = latency_us as f64 / 1000.0;
    LATENCY_BUCKETS_MS
        .iter()
        .position(|&upper| ms <= upper)
        .unwrap_or(LATENCY_BUCKETS_MS.len())
}

/// The latency (ms) at quantile `q` (0..=1) of a histogram: the upper bound of the bucket holding it.
pub fn histogram_quantile(counts: &[i64; HISTOGRAM_LEN], q: f64) -> Option<f64> {
    let total: i64 = counts.iter().sum();
    if total <= 0 {
        return None;
    }
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        reason = "counts fit f64"
    )]
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as i64).max(1);
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(LATENCY_BUCKETS_MS.get(i).copied().unwrap_or(f64::INFINITY));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(500), 0);
        assert_eq!(latency_bucket(501), 1);
        assert_eq!(latency_bucket(60_000_000), HISTOGRAM_LEN - 1);
        let mut h = [0; HISTOGRAM_LEN];
        for us in [800, 900, 1_900, 45_000] {
            h[latency_bucket(us)] += 1;
        }
        assert_eq!(histogram_quantile(&h, 0.5), Some(1.0));
        assert_eq!(histogram_quantile(&h, 0.75), Some(2.0));
        assert_eq!(histogram_quantile(&h, 0.99), Some(60.0));
        assert_eq!(histogram_quantile(&[0; HISTOGRAM_LEN], 0.5), None);
    }

    #[test]
    fn content_ids_follow_the_content_only() {
        let mut a = UsageEvent::new(1_700_000_000_000, "POST", "/v1/chat", 200);
        a.model = Some("gpt-4o".into());
        a.tokens.prompt = 12;
        let mut b = a.clone();
        b.event_id = Uuid::now_v7();
        b.cost_usd = Some(0.5);
        assert_eq!(a.content_id(), b.content_id());
        assert_eq!(a.content_id().get_version_num(), 8);
        b.tokens.prompt = 13;
        assert_ne!(a.content_id(), b.content_id());
        let mut c = a.clone();
        c.ts_ms += 1;
        assert_ne!(a.content_id(), c.content_id());
        let mut d = a.clone();
        d.user_agent = Some(String::new());
        assert_ne!(a.content_id(), d.content_id());
    }

    #[test]
    fn events_round_trip_through_json() {
        let mut e = UsageEvent::new(1, "POST", "/v1/chat", 200);
        e.tokens.prompt = 3;
        let text = serde_json::to_string(&e).unwrap_or_default();
        let back: UsageEvent =
            serde_json::from_str(&text).unwrap_or_else(|err| unreachable!("{err}"));
        assert_eq!(back, e);
        assert_eq!(status_class(499), 4);
        assert!(e.status_class() == 2 && !e.is_error());
    }
}
