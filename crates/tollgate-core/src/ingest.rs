//! The usage ingest API's wire format and limits, shared by the server that validates reports
//! (`tollgate-console`) and the in-process middleware that sends them (`tollgate-middleware`):
//! a field or a bound changed here changes on both sides, so the middleware never sends what the
//! server would refuse.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Path of the batch endpoint under a tollgate server's base URL.
pub const EVENTS_PATH: &str = "/api/v1/usage/events";
/// Header carrying `sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`.
pub const SIGNATURE_HEADER: &str = "x-tollgate-signature";
/// Header carrying the unix time (seconds) the signature was made at; it is part of what is signed.
pub const TIMESTAMP_HEADER: &str = "x-tollgate-timestamp";
/// Largest difference between a signature's timestamp and the server's clock, so that a captured
/// request cannot be replayed later.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Most events in one request.
pub const MAX_BATCH: usize = 10_000;
/// Longest reporter's event id, in bytes.
pub const MAX_ID_LEN: usize = 200;
/// Longest HTTP method, in ASCII letters.
pub const MAX_METHOD_LEN: usize = 16;
/// Longest request path, in characters.
pub const MAX_PATH_CHARS: usize = 2048;
/// Longest route name or path, in characters.
pub const MAX_ROUTE_CHARS: usize = 2048;
/// Longest client address text, in characters.
pub const MAX_CLIENT_IP_CHARS: usize = 64;
/// Longest user agent, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 1000;
/// Longest model name, in characters.
pub const MAX_MODEL_CHARS: usize = 200;
/// Longest error message, in characters.
pub const MAX_ERROR_CHARS: usize = 2000;
/// Largest plausible count of one kind of token in one call.
pub const MAX_TOKENS: u64 = 1_000_000_000_000;
/// Largest plausible total of tokens in one call.
pub const MAX_TOTAL_TOKENS: u64 = 2 * MAX_TOKENS;
/// Longest plausible latency, ms (a day).
pub const MAX_LATENCY_MS: f64 = 86_400_000.0;
/// Earliest accepted timestamp, epoch ms (2000-01-01): seconds sent instead of milliseconds fall
/// below it, a common mistake worth naming.
pub const MIN_TS_MS: i64 = 946_684_800_000;
/// Cost bound, USD (exclusive).
pub const MAX_COST_USD: f64 = 1e9;
/// Statuses accepted.
pub const STATUS_RANGE: RangeInclusive<u16> = 100..=599;
/// How far in the future an event's time may be, ms: a reporter's clock a little ahead is
/// forgiven, a report days ahead (which would move a key's last use into the future) is not.
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// A full usage event from another proxy or the middleware. Fields the server does not know are
/// ignored (and named in its answer), so a newer reporter still reaches an older server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestEvent {
    /// Reporter's id: a repeated id is counted once. Without one, the id is derived from the
    /// content, so an identical event is counted once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the call started, epoch ms.
    pub ts: i64,
    /// SHA-256 hex of the key used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
    /// Id of the key used, for reporters that know it rather than the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<i64>,
    /// Route name, else a path whose longest matching route prefix is the route (without
    /// either, the route is matched on `path`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Status answered; without it the call's status is stored as unknown (0), which counts
    /// neither as a success nor as an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Total latency, ms.
    pub latency_ms: f64,
    /// Upstream latency: time to the upstream's response head (first byte), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_latency_ms: Option<f64>,
    /// Upstream time to last byte: from sending the request upstream until its answer ended, ms
    /// (counted from the same moment as `upstream_latency_ms`, so not less than it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_last_byte_ms: Option<f64>,
    /// Client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// User agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// LLM model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Total tokens (default prompt + completion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// Cached prompt tokens.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Whether the tokens were estimated.
    #[serde(default)]
    pub estimated: bool,
    /// Cost, USD (default: from the price table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `ingest` (default) or `middleware`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_the_wire_and_leaves_out_what_it_lacks() {
        let event = IngestEvent {
            id: Some("0190a3c4-0000-7000-8000-000000000001".into()),
            ts: MIN_TS_MS,
            key_hash: None,
            key_id: None,
            route: None,
            method: "GET".into(),
            path: "/x".into(),
            status: Some(200),
            latency_ms: 1.5,
            upstream_latency_ms: None,
            upstream_last_byte_ms: None,
            client_ip: None,
            user_agent: None,
            model: Some("m".into()),
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: None,
            cached_tokens: 0,
            reasoning_tokens: 0,
            estimated: false,
            cost_usd: None,
            error: None,
            source: Some("middleware".into()),
        };
        let json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(json.get("key_hash"), None);
        assert_eq!(json.get("total_tokens"), None);
        assert_eq!(json["prompt_tokens"], 3);
        assert_eq!(json["source"], "middleware");
        let back: IngestEvent = serde_json::from_value(json).expect("parses");
        assert_eq!(back, event);
    }

    #[test]
    fn unknown_fields_and_a_missing_status_are_forgiven() {
        let event = serde_json::from_str::<IngestEvent>(
            r#"{"ts":1,"method":"GET","path":"/","latency_ms":0,"tokens":5}"#,
        )
        .expect("an unknown field is ignored");
        assert_eq!(event.status, None);
        assert_eq!(event.prompt_tokens, 0);
    }
}
