//! Reading a reported body: one event or a batch, each event checked on its own. A bad event is
//! refused with the field named and its place in the batch; the good ones go on. Fields the
//! server does not know are ignored and named, so a newer reporter still reaches an older server.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::{self, Visitor};
use tollgate_core::ingest::{
    IngestEvent, MAX_BATCH, MAX_CLIENT_IP_CHARS, MAX_COST_USD, MAX_ERROR_CHARS, MAX_FUTURE_MS,
    MAX_ID_LEN, MAX_LATENCY_MS, MAX_METHOD_LEN, MAX_MODEL_CHARS, MAX_PATH_CHARS, MAX_ROUTE_CHARS,
    MAX_TOKENS, MAX_TOTAL_TOKENS, MAX_USER_AGENT_CHARS, MIN_TS_MS, STATUS_RANGE,
};
use tollgate_core::pricing::PricedTable;
use tollgate_core::time::DAY_MS;
use tollgate_core::usage::UNKNOWN_STATUS;
use tollgate_core::{KeyHash, TokenUsage, UsageEvent, UsageSource};
use utoipa::ToSchema;
use uuid::Uuid;

use super::event_id_of;
use crate::api::views::MAX_TIME_MS;
use crate::error::{ApiError, ApiResult};

/// The seed's usage report (an edge gateway's call). Fields it does not know are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UsageLog {
    /// Reporter's id for the event: a repeated id is counted once. Without one, the id is derived
    /// from the content, so an identical report is counted once.
    pub id: Option<String>,
    /// SHA-256 hex of the full key used (`ntk_…`).
    pub token_hash: String,
    /// The route: a route's name, or the path called (attributed to the route with the longest
    /// matching prefix).
    pub route: String,
    /// When, epoch ms: at most 5 minutes ahead of the server, and within the raw retention.
    pub timestamp: i64,
    /// Status answered; without it the status is stored as unknown (0).
    pub response_status: Option<u16>,
    /// Time taken, ms.
    pub response_time_ms: Option<f64>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// HTTP method.
    pub request_method: Option<String>,
    /// Why the call failed.
    pub error_message: Option<String>,
}

/// One event of a batch that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ToSchema)]
pub struct Rejection {
    /// Its place in the batch, from 0.
    pub index: usize,
    /// The field at fault.
    pub field: String,
    /// One human line naming it.
    pub message: String,
}

/// A body read: the good events (with their place in the batch), the refused ones, and the
/// fields that were ignored.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Valid events, each with its index in the batch (0 for a single object).
    pub events: Vec<(usize, UsageEvent)>,
    /// Refused events.
    pub rejected: Vec<Rejection>,
    /// Names of the fields ignored, each once, sorted.
    pub ignored_fields: BTreeSet<String>,
    /// Whether the body was an array (a fault is then reported as `[index].field`).
    pub batch: bool,
}

impl Parsed {
    /// Refuses the event at `index` (after validation, e.g. when attribution finds its key id
    /// unknown).
    pub(crate) fn reject(&mut self, index: usize, e: ApiError) {
        self.events.retain(|(i, _)| *i != index);
        self.rejected.push(rejection(index, e));
        self.rejected.sort_by_key(|r| r.index);
    }

    /// A 422 naming the first fault when no event is left to store: a request that stores
    /// nothing is refused, so a reporter sending only bad events hears it as an error.
    pub fn refuse_if_empty(&self) -> ApiResult<()> {
        match self.rejected.first() {
            Some(first) if self.events.is_empty() => Err(if self.batch {
                ApiError::Invalid {
                    field: format!("[{}].{}", first.index, first.field),
                    message: format!(
                        "no event of the batch was accepted; event {}: {}",
                        first.index, first.message
                    ),
                }
            } else {
                ApiError::Invalid {
                    field: first.field.clone(),
                    message: first.message.clone(),
                }
            }),
            _ => Ok(()),
        }
    }
}

/// The window an event's time must fall in: not beyond a few minutes ahead of the server's
/// clock (a report days ahead would move a key's last use into the future), not older than the
/// raw retention (the clean-up would delete it at once, after its roll-ups had counted it).
#[derive(Debug, Clone, Copy)]
pub struct TimeWindow {
    /// The server's clock, epoch ms.
    pub now_ms: i64,
    /// Raw usage retention, days.
    pub retention_days: u32,
}

impl TimeWindow {
    fn check(self, field: &str, ts: i64) -> ApiResult<i64> {
        // 2000-01-01 to 9999: seconds instead of milliseconds are a common mistake worth naming.
        if !(MIN_TS_MS..MAX_TIME_MS).contains(&ts) {
            return Err(ApiError::invalid(
                field,
                format!("{field} {ts} is not epoch milliseconds after 2000"),
            ));
        }
        let ahead = ts.saturating_sub(self.now_ms);
        if ahead > MAX_FUTURE_MS {
            return Err(ApiError::invalid(
                field,
                format!(
                    "{field} is {} s in the future; at most {} s is accepted (check the reporter's clock)",
                    ahead / 1000,
                    MAX_FUTURE_MS / 1000
                ),
            ));
        }
        let oldest = self
            .now_ms
            .saturating_sub(i64::from(self.retention_days).saturating_mul(DAY_MS));
        if ts < oldest {
            return Err(ApiError::invalid(
                field,
                format!(
                    "{field} is older than the raw retention of {} days",
                    self.retention_days
                ),
            ));
        }
        Ok(ts)
    }
}

/// The id of a reported event: from the reporter's id when it gives one, else from the event's
/// content, so that a batch sent twice (a retry, a replay) is stored once either way.
fn event_id_for(id: Option<&str>, event: &UsageEvent) -> Uuid {
    match id {
        Some(_) => event_id_of(id),
        None => event.content_id(),
    }
}

fn text(field: &str, value: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("{field} is longer than {max} characters"),
        )),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn check_latency(field: &str, ms: f64) -> ApiResult<i64> {
    if ms.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&ms) {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "bounded to a day in µs just above"
        )]
        Ok((ms * 1000.0).round() as i64)
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be 0 to {MAX_LATENCY_MS} ms"),
        ))
    }
}

/// A reported status, or [`UNKNOWN_STATUS`] when the reporter did not say.
fn check_status(field: &str, status: Option<u16>) -> ApiResult<u16> {
    match status {
        None => Ok(UNKNOWN_STATUS),
        Some(s) if STATUS_RANGE.contains(&s) => Ok(s),
        Some(s) => Err(ApiError::invalid(
            field,
            format!("{field} {s} is not an HTTP status"),
        )),
    }
}

fn check_ip(field: &str, ip: Option<String>) -> ApiResult<Option<String>> {
    match ip {
        Some(ip) if ip.parse::<IpAddr>().is_err() => Err(ApiError::invalid(
            field,
            format!("{field} `{ip}` is not an IP address"),
        )),
        other => Ok(other),
    }
}

fn check_method(field: &str, method: Option<String>) -> ApiResult<String> {
    let method = method.unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
    if method.is_empty()
        || method.len() > MAX_METHOD_LEN
        || !method.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return Err(ApiError::invalid(
            field,
            format!("{field} `{method}` is not an HTTP method"),
        ));
    }
    Ok(method)
}

fn check_hash(field: &str, hash: String) -> ApiResult<KeyHash> {
    KeyHash::try_from(hash.to_ascii_lowercase()).map_err(|_| {
        ApiError::invalid(
            field,
            format!("{field} must be 64 hex characters (SHA-256 of the key)"),
        )
    })
}

fn check_id(field: &str, id: Option<String>) -> ApiResult<Option<String>> {
    match id {
        Some(id) if id.is_empty() || id.len() > MAX_ID_LEN => Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to {MAX_ID_LEN} characters"),
        )),
        other => Ok(other),
    }
}

fn usage_log_event(window: TimeWindow, log: UsageLog) -> ApiResult<UsageEvent> {
    let status = check_status("response_status", log.response_status)?;
    let mut event = UsageEvent::new(
        window.check("timestamp", log.timestamp)?,
        check_method("request_method", log.request_method)?,
        String::new(),
        status,
    );
    let id = check_id("id", log.id)?;
    event.key_hash = Some(check_hash("token_hash", log.token_hash)?);
    let route = text("route", Some(log.route), MAX_ROUTE_CHARS)?
        .ok_or_else(|| ApiError::invalid("route", "route must not be empty"))?;
    event.path = route.split('?').next().unwrap_or_default().to_owned();
    event.route = Some(route);
    event.latency_us = log
        .response_time_ms
        .map(|ms| check_latency("response_time_ms", ms))
        .transpose()?
        .unwrap_or(0);
    event.client_ip = check_ip(
        "ip_address",
        text("ip_address", log.ip_address, MAX_CLIENT_IP_CHARS)?,
    )?;
    event.user_agent = text("user_agent", log.user_agent, MAX_USER_AGENT_CHARS)?;
    event.error = text("error_message", log.error_message, MAX_ERROR_CHARS)?;
    event.source = UsageSource::Ingest;
    event.event_id = event_id_for(id.as_deref(), &event);
    Ok(event)
}

fn ingest_event(prices: &PricedTable, window: TimeWindow, e: IngestEvent) -> ApiResult<UsageEvent> {
    let status = check_status("status", e.status)?;
    let method = check_method("method", Some(e.method))?;
    let path = text("path", Some(e.path), MAX_PATH_CHARS)?
        .ok_or_else(|| ApiError::invalid("path", "path must not be empty"))?;
    let mut event = UsageEvent::new(window.check("ts", e.ts)?, method, path, status);
    let id = check_id("id", e.id)?;
    event.key_hash = e.key_hash.map(|h| check_hash("key_hash", h)).transpose()?;
    if let Some(key_id) = e.key_id {
        if key_id <= 0 {
            return Err(ApiError::invalid("key_id", "key_id must be a key's id"));
        }
        event.key_id = Some(key_id);
    }
    event.route = text("route", e.route, MAX_ROUTE_CHARS)?;
    event.latency_us = check_latency("latency_ms", e.latency_ms)?;
    event.upstream_latency_us = e
        .upstream_latency_ms
        .map(|ms| check_latency("upstream_latency_ms", ms))
        .transpose()?;
    event.upstream_last_byte_us = e
        .upstream_last_byte_ms
        .map(|ms| check_latency("upstream_last_byte_ms", ms))
        .transpose()?;
    if let (Some(first), Some(last)) = (event.upstream_latency_us, event.upstream_last_byte_us)
        && last < first
    {
        return Err(ApiError::invalid(
            "upstream_last_byte_ms",
            "upstream_last_byte_ms must not be less than upstream_latency_ms: both count from \
             sending the request upstream",
        ));
    }
    event.client_ip = check_ip(
        "client_ip",
        text("client_ip", e.client_ip, MAX_CLIENT_IP_CHARS)?,
    )?;
    event.user_agent = text("user_agent", e.user_agent, MAX_USER_AGENT_CHARS)?;
    event.model = text("model", e.model, MAX_MODEL_CHARS)?;
    for (field, v) in [
        ("prompt_tokens", e.prompt_tokens),
        ("completion_tokens", e.completion_tokens),
        ("cached_tokens", e.cached_tokens),
        ("reasoning_tokens", e.reasoning_tokens),
    ] {
        if v > MAX_TOKENS {
            return Err(ApiError::invalid(
                field,
                format!("{field} is implausibly large"),
            ));
        }
    }
    let total = e
        .total_tokens
        .unwrap_or(e.prompt_tokens + e.completion_tokens);
    if total > MAX_TOTAL_TOKENS {
        return Err(ApiError::invalid(
            "total_tokens",
            "total_tokens is implausibly large",
        ));
    }
    // Bounded above, so the conversions cannot fail.
    let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    event.tokens = TokenUsage {
        prompt: signed(e.prompt_tokens),
        completion: signed(e.completion_tokens),
        total: signed(total),
        cached: signed(e.cached_tokens),
        reasoning: signed(e.reasoning_tokens),
    };
    event.estimated = e.estimated;
    event.cost_usd = match e.cost_usd {
        Some(c) if !c.is_finite() || !(0.0..MAX_COST_USD).contains(&c) => {
            return Err(ApiError::invalid("cost_usd", "cost_usd must be 0 to 1e9"));
        }
        Some(c) => Some(c),
        None => prices.cost(event.model.as_deref(), &event.tokens),
    };
    event.error = text("error", e.error, MAX_ERROR_CHARS)?;
    event.source = match e.source.as_deref() {
        None | Some("ingest") => UsageSource::Ingest,
        Some("middleware") => UsageSource::Middleware,
        Some(other) => {
            return Err(ApiError::invalid(
                "source",
                format!("source `{other}` is not ingest or middleware"),
            ));
        }
    };
    event.event_id = event_id_for(id.as_deref(), &event);
    Ok(event)
}

/// A `/api/usage-log` body read at `window`. Public for the fuzz target.
#[doc(hidden)]
pub fn usage_logs_from_body(body: &[u8], window: TimeWindow) -> ApiResult<Parsed> {
    parse_batch::<UsageLog>(body, |log| usage_log_event(window, log))
}

/// A `/api/v1/usage/events` body read at `window`, priced with `prices` where the reporter sent
/// no cost. Public for the fuzz target.
#[doc(hidden)]
pub fn events_from_body(
    body: &[u8],
    prices: &PricedTable,
    window: TimeWindow,
) -> ApiResult<Parsed> {
    parse_batch::<IngestEvent>(body, |e| ingest_event(prices, window, e))
}

fn rejection(index: usize, e: ApiError) -> Rejection {
    match e {
        ApiError::Invalid { field, message } => Rejection {
            index,
            field,
            message,
        },
        other => Rejection {
            index,
            field: "body".into(),
            message: other.to_string(),
        },
    }
}

/// One object or an array of them. A single object with a fault is refused whole (422); in a
/// batch each bad event is refused on its own, unless none is good: then the request is a 422
/// naming the first bad event's field as `[index].field`.
fn parse_batch<T: serde::de::DeserializeOwned>(
    body: &[u8],
    validate: impl Fn(T) -> ApiResult<UsageEvent>,
) -> ApiResult<Parsed> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
            code: "malformed_json",
            message: format!("the body is not valid JSON: {e}"),
            field: None,
        })?;
    let known = declared_fields::<T>();
    let mut parsed = Parsed::default();
    let mut one = |v: serde_json::Value| -> ApiResult<UsageEvent> {
        if let serde_json::Value::Object(fields) = &v {
            parsed.ignored_fields.extend(
                fields
                    .keys()
                    .filter(|k| !known.contains(&k.as_str()))
                    .cloned(),
            );
        }
        let item = serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
            let path = e.path().to_string();
            let msg = e.inner().to_string();
            let field = if path == "." {
                crate::error::field_of_message(&msg).unwrap_or_else(|| "body".into())
            } else {
                path
            };
            ApiError::Invalid {
                message: format!("{field}: {msg}"),
                field,
            }
        })?;
        validate(item)
    };
    match value {
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                return Err(ApiError::invalid("body", "the batch is empty"));
            }
            if items.len() > MAX_BATCH {
                return Err(ApiError::invalid(
                    "body",
                    format!("at most {MAX_BATCH} events per request"),
                ));
            }
            let mut rejected = Vec::new();
            let mut events = Vec::new();
            for (i, v) in items.into_iter().enumerate() {
                match one(v) {
                    Ok(event) => events.push((i, event)),
                    Err(e) => rejected.push(rejection(i, e)),
                }
            }
            parsed.events = events;
            parsed.rejected = rejected;
            parsed.batch = true;
            parsed.refuse_if_empty()?;
            Ok(parsed)
        }
        serde_json::Value::Object(_) => {
            let event = one(value)?;
            parsed.events = vec![(0, event)];
            Ok(parsed)
        }
        _ => Err(ApiError::invalid(
            "body",
            "send one event object or an array of them",
        )),
    }
}

/// The field names a derived `Deserialize` struct reads, taken from what it asks a deserializer
/// for: the list of known fields cannot drift from the type.
fn declared_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct's field names are read"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only a struct's field names are read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> TimeWindow {
        TimeWindow {
            now_ms: 1_800_000_000_000,
            retention_days: 30,
        }
    }

    #[test]
    fn the_known_fields_are_read_from_the_types() {
        let fields = declared_fields::<UsageLog>();
        assert!(fields.contains(&"token_hash") && fields.contains(&"error_message"));
        assert!(declared_fields::<IngestEvent>().contains(&"key_id"));
    }

    #[test]
    fn a_batch_keeps_its_good_events_and_names_each_bad_one() {
        let now = window().now_ms;
        let hash = "ab".repeat(32);
        let body = serde_json::json!([
            {"token_hash": hash, "route": "/a", "timestamp": now, "colour": "red"},
            {"token_hash": hash, "route": "/a", "timestamp": now + 3 * DAY_MS},
            {"token_hash": hash, "route": "/a", "timestamp": now - 31 * DAY_MS},
            {"token_hash": hash, "route": "/a", "timestamp": now, "response_status": 42},
            {"token_hash": hash, "route": "/b", "timestamp": now - 1000}
        ]);
        let parsed = usage_logs_from_body(body.to_string().as_bytes(), window()).expect("parsed");
        let kept: Vec<usize> = parsed.events.iter().map(|(i, _)| *i).collect();
        assert_eq!(kept, [0, 4]);
        let refused: Vec<(usize, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str()))
            .collect();
        assert_eq!(
            refused,
            [(1, "timestamp"), (2, "timestamp"), (3, "response_status")]
        );
        assert!(parsed.rejected[0].message.contains("future"));
        assert!(parsed.rejected[1].message.contains("retention"));
        assert_eq!(
            parsed.ignored_fields.into_iter().collect::<Vec<_>>(),
            ["colour"]
        );
        assert!(
            parsed
                .events
                .iter()
                .all(|(_, e)| e.status == UNKNOWN_STATUS && !e.is_error())
        );
    }

    #[test]
    fn a_batch_with_nothing_good_is_refused_naming_the_first_fault() {
        let body = serde_json::json!([{"ts": 1}, {"ts": "soon"}]).to_string();
        let err = events_from_body(
            body.as_bytes(),
            &tollgate_core::pricing::Prices::default().current(),
            window(),
        )
        .expect_err("nothing good");
        match err {
            ApiError::Invalid { field, .. } => assert_eq!(field, "[0].method"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_single_bad_object_is_refused_whole() {
        let now = window().now_ms;
        let body = serde_json::json!({"ts": now + MAX_FUTURE_MS + 60_000, "method": "GET", "path": "/", "latency_ms": 1});
        let err = events_from_body(
            body.to_string().as_bytes(),
            &tollgate_core::pricing::Prices::default().current(),
            window(),
        )
        .expect_err("future");
        assert!(
            matches!(err, ApiError::Invalid { ref field, .. } if field == "ts"),
            "{err:?}"
        );
    }
}
