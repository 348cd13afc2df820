//! Usage ingest for edge gateways, other proxies and the in-process middleware:
//! `POST /api/v1/usage/events` here, and the rules the seed's `POST /api/usage-log`
//! ([`super::compat::usage`]) shares. Authenticated by the ingest secret (an
//! HMAC of `"{X-Tollgate-Timestamp}.{body}"`, the timestamp within five minutes of now, or the
//! secret as a bearer token); open only when explicitly configured. Events go through the same
//! writer as the gateway's, so a repeated event id is stored once; an event without an id gets
//! one derived from its content, so a replayed batch counts once.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tollgate_core::ingest::{
    MAX_CLIENT_IP_CHARS, MAX_COST_USD, MAX_ERROR_CHARS, MAX_ID_LEN, MAX_LATENCY_MS, MAX_METHOD_LEN,
    MAX_MODEL_CHARS, MAX_PATH_CHARS, MAX_ROUTE_CHARS, MAX_TOKENS, MAX_TOTAL_TOKENS,
    MAX_USER_AGENT_CHARS, MIN_TS_MS, STATUS_RANGE,
};
use tollgate_core::pricing::PriceTable;
use tollgate_core::{KeyHash, TokenUsage, UsageEvent, UsageSource};
use utoipa::ToSchema;
use uuid::Uuid;

use super::views::MAX_TIME_MS;
use crate::ConsoleState;
use crate::auth::constant_time_eq;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiBytes;

pub use tollgate_core::ingest::{
    IngestEvent, MAX_BATCH, SIGNATURE_HEADER, SIGNATURE_TOLERANCE_SECS, TIMESTAMP_HEADER,
};
/// Name of the setting holding a secret rotated from the console.
pub const INGEST_SECRET_SETTING: &str = "ingest_secret";

/// Where the ingest secret in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// Rotated from the console (stored in the store).
    Console,
    /// `TOLLGATE_INGEST_SECRET` or the config file.
    Config,
    /// None: ingest refuses everything (unless open).
    None,
}

/// The ingest secret in force, cached for a second so that a rotation on another instance applies quickly.
#[derive(Debug, Default)]
pub struct IngestSecret {
    cached: std::sync::Mutex<Option<(Instant, Option<SecretString>)>>,
}

impl IngestSecret {
    /// Drops the cached value (after a rotation here).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cached.lock() {
            *c = None;
        }
    }

    /// The secret in force and where it comes from.
    pub async fn current(
        &self,
        state: &ConsoleState,
    ) -> ApiResult<(Option<SecretString>, SecretSource)> {
        let cached = self
            .cached
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(at, _)| at.elapsed() < Duration::from_secs(1));
        let stored = match cached {
            Some((_, value)) => value,
            None => {
                let value = load_stored(state).await?;
                if let Ok(mut c) = self.cached.lock() {
                    *c = Some((Instant::now(), value.clone()));
                }
                value
            }
        };
        Ok(match (stored, &state.settings.ingest_secret) {
            (Some(s), _) => (Some(s), SecretSource::Console),
            (None, Some(s)) => (Some(s.clone()), SecretSource::Config),
            (None, None) => (None, SecretSource::None),
        })
    }
}

/// A rotated secret is stored sealed with the master key when there is one, else as given.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredSecret {
    /// Hex of the sealed bytes.
    Sealed(String),
    /// The secret itself (no master key configured).
    Plain(String),
}

async fn load_stored(state: &ConsoleState) -> ApiResult<Option<SecretString>> {
    let Some(text) = state.store.setting(INGEST_SECRET_SETTING).await? else {
        return Ok(None);
    };
    let stored: StoredSecret = serde_json::from_str(&text)
        .map_err(|e| ApiError::Internal(format!("ingest secret setting: {e}")))?;
    match stored {
        StoredSecret::Plain(s) => Ok(Some(SecretString::from(s))),
        StoredSecret::Sealed(hexed) => {
            let master = state.master_key.as_ref().ok_or_else(|| {
                ApiError::Internal(
                    "the ingest secret is sealed but no master key is configured".into(),
                )
            })?;
            let bytes = hex::decode(hexed)
                .map_err(|e| ApiError::Internal(format!("ingest secret hex: {e}")))?;
            let secret = master
                .open_text(
                    &bytes,
                    tollgate_core::crypto::SealedRow::Setting(INGEST_SECRET_SETTING),
                )
                .map_err(|e| ApiError::Internal(format!("ingest secret: {e}")))?;
            Ok(Some(SecretString::from(secret)))
        }
    }
}

/// Checks the request's ingest credentials against the secret in force.
pub(crate) async fn authorize(
    state: &ConsoleState,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<()> {
    let (secret, _) = state.ingest_secret.current(state).await?;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(secret) = secret else {
        if state.settings.ingest_open {
            return Ok(());
        }
        return Err(ApiError::unauthenticated(
            "ingest_disabled",
            "usage ingest is off: set TOLLGATE_INGEST_SECRET (or allow unauthenticated ingest explicitly)",
        ));
    };
    if let Some(sig) = signature {
        let timestamp = headers
            .get(TIMESTAMP_HEADER)
            .map(|v| v.to_str().unwrap_or("?"));
        return verify_signature(
            secret.expose_secret().as_bytes(),
            sig,
            timestamp,
            body,
            tollgate_core::time::now_ms() / 1000,
        );
    }
    if let Some(token) = bearer {
        if constant_time_eq(token.as_bytes(), secret.expose_secret().as_bytes()) {
            return Ok(());
        }
        return Err(ApiError::unauthenticated(
            "invalid_ingest_token",
            "the ingest token is wrong",
        ));
    }
    if state.settings.ingest_open {
        return Ok(());
    }
    Err(ApiError::unauthenticated(
        "missing_signature",
        "send X-Tollgate-Signature: sha256=<HMAC of the body> or Authorization: Bearer <ingest secret>",
    ))
}

/// Checks an `X-Tollgate-Signature` over `"{timestamp}.{body}"`, then that the signed timestamp is
/// within [`SIGNATURE_TOLERANCE_SECS`] of `now_secs`: a captured request cannot be replayed later,
/// and its timestamp cannot be changed without the secret.
pub fn verify_signature(
    secret: &[u8],
    signature: &str,
    timestamp: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> ApiResult<()> {
    let timestamp = timestamp.ok_or_else(|| {
        ApiError::unauthenticated(
            "missing_timestamp",
            "a signed request needs X-Tollgate-Timestamp: <unix seconds>, signed as \"{timestamp}.{body}\"",
        )
    })?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .ok()
        .filter(|_| {
            !timestamp.trim().is_empty() && timestamp.trim().bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or_else(|| {
            ApiError::unauthenticated(
                "invalid_timestamp",
                format!(
                    "X-Tollgate-Timestamp `{}` is not unix seconds",
                    timestamp.chars().take(40).collect::<String>()
                ),
            )
        })?;
    let hexed = signature.strip_prefix("sha256=").ok_or_else(|| {
        ApiError::unauthenticated(
            "invalid_signature",
            "X-Tollgate-Signature must be sha256=<hex>",
        )
    })?;
    let given = hex::decode(hexed.trim()).map_err(|_| {
        ApiError::unauthenticated("invalid_signature", "X-Tollgate-Signature is not hex")
    })?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|e| ApiError::Internal(format!("hmac: {e}")))?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| {
        ApiError::unauthenticated(
            "invalid_signature",
            "the signature does not match \"{X-Tollgate-Timestamp}.{body}\" under the ingest secret",
        )
    })?;
    let skew = now_secs.saturating_sub(ts);
    if skew.unsigned_abs() > SIGNATURE_TOLERANCE_SECS.unsigned_abs() {
        let (amount, direction) = if skew > 0 {
            (skew, "old")
        } else {
            (skew.saturating_neg(), "in the future")
        };
        return Err(ApiError::unauthenticated(
            "stale_signature",
            format!(
                "the signature's timestamp is {amount} s {direction}; at most {SIGNATURE_TOLERANCE_SECS} s is accepted (check the reporter's clock)"
            ),
        ));
    }
    Ok(())
}

/// An event id from a reporter's id: a UUID is kept, anything else is hashed into one, so that
/// retries with the same id are stored once.
pub fn event_id_of(id: Option<&str>) -> Uuid {
    match id {
        Some(text) => Uuid::parse_str(text).unwrap_or_else(|_| {
            let digest = Sha256::digest(format!("tollgate-ingest:{text}").as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_custom_bytes(bytes).into_uuid()
        }),
        None => Uuid::now_v7(),
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

/// The seed's usage report (an edge gateway's call).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageLog {
    /// Reporter's id for the event: a repeated id is counted once. Without one, the id is derived
    /// from the content, so an identical report is counted once.
    pub id: Option<String>,
    /// SHA-256 hex of the key used.
    pub token_hash: String,
    /// The route path called.
    pub route: String,
    /// When, epoch ms.
    pub timestamp: i64,
    /// Status answered.
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

/// The seed's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Logged {
    /// Always `logged`.
    pub status: &'static str,
    /// Events accepted.
    pub count: usize,
}

/// The v1 answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Events accepted (repeated ids are accepted and stored once).
    pub accepted: usize,
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

fn check_ts(field: &str, ts: i64) -> ApiResult<i64> {
    // 2000-01-01 to 9999: seconds instead of milliseconds are a common mistake worth naming.
    if (MIN_TS_MS..MAX_TIME_MS).contains(&ts) {
        Ok(ts)
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} {ts} is not epoch milliseconds after 2000"),
        ))
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

fn check_status(field: &str, status: u16) -> ApiResult<u16> {
    if STATUS_RANGE.contains(&status) {
        Ok(status)
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} {status} is not an HTTP status"),
        ))
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

/// Prefixes an error's field with the event's place in a batch.
fn at(index: Option<usize>, e: ApiError) -> ApiError {
    match (index, e) {
        (Some(i), ApiError::Invalid { field, message }) => ApiError::Invalid {
            field: format!("[{i}].{field}"),
            message: format!("event {i}: {message}"),
        },
        (_, other) => other,
    }
}

fn usage_log_event(log: UsageLog) -> ApiResult<UsageEvent> {
    let status = check_status("response_status", log.response_status.unwrap_or(200))?;
    let mut event = UsageEvent::new(
        check_ts("timestamp", log.timestamp)?,
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

fn ingest_event(prices: &PriceTable, e: IngestEvent) -> ApiResult<UsageEvent> {
    let status = check_status("status", e.status)?;
    let method = check_method("method", Some(e.method))?;
    let path = text("path", Some(e.path), MAX_PATH_CHARS)?
        .ok_or_else(|| ApiError::invalid("path", "path must not be empty"))?;
    let mut event = UsageEvent::new(check_ts("ts", e.ts)?, method, path, status);
    let id = check_id("id", e.id)?;
    event.key_hash = e.key_hash.map(|h| check_hash("key_hash", h)).transpose()?;
    event.route = text("route", e.route, MAX_ROUTE_CHARS)?;
    event.latency_us = check_latency("latency_ms", e.latency_ms)?;
    event.upstream_latency_us = e
        .upstream_latency_ms
        .map(|ms| check_latency("upstream_latency_ms", ms))
        .transpose()?;
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
        Some(c) => c,
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

/// The validated events of a `/api/usage-log` body: all of them, or the first error (nothing is
/// recorded from a batch with a bad event). Public for the fuzz target.
#[doc(hidden)]
pub fn usage_logs_from_body(body: &[u8]) -> ApiResult<Vec<UsageEvent>> {
    parse_batch::<UsageLog>(body)?
        .into_iter()
        .map(|(i, log)| usage_log_event(log).map_err(|e| at(i, e)))
        .collect()
}

/// The validated events of a `/api/v1/usage/events` body, priced with `prices` where the
/// reporter sent no cost. Public for the fuzz target.
#[doc(hidden)]
pub fn events_from_body(body: &[u8], prices: &PriceTable) -> ApiResult<Vec<UsageEvent>> {
    parse_batch::<IngestEvent>(body)?
        .into_iter()
        .map(|(i, e)| ingest_event(prices, e).map_err(|err| at(i, err)))
        .collect()
}

/// Hands the events to the usage sink. With `usage.durability = "spool"` the answer waits until
/// they are on disk, as a gateway call's does.
pub(crate) async fn record_all(state: &ConsoleState, events: Vec<UsageEvent>) {
    let acks: Vec<_> = events
        .into_iter()
        .map(|event| state.sink.record_acked(event))
        .collect();
    // One group commit usually syncs the whole batch, so these resolve together.
    for ack in acks {
        ack.await;
    }
}

/// One object or an array of them.
fn parse_batch<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<Vec<(Option<usize>, T)>> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
            code: "malformed_json",
            message: format!("the body is not valid JSON: {e}"),
            field: None,
        })?;
    let one = |i: Option<usize>, v: serde_json::Value| {
        serde_path_to_error::deserialize::<_, T>(v)
            .map(|t| (i, t))
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.inner().to_string();
                let field = if path == "." {
                    crate::error::field_of_message(&msg).unwrap_or_else(|| "body".into())
                } else {
                    path
                };
                at(
                    i,
                    ApiError::Invalid {
                        message: format!("{field}: {msg}"),
                        field,
                    },
                )
            })
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
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| one(Some(i), v))
                .collect()
        }
        serde_json::Value::Object(_) => Ok(vec![one(None, value)?]),
        _ => Err(ApiError::invalid(
            "body",
            "send one event object or an array of them",
        )),
    }
}

/// Refuses a body that is not declared as JSON.
pub(crate) fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    let ok = crate::extract::is_json(headers);
    if ok {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json".into(),
        ))
    }
}

/// Records a batch of full usage events (another proxy, the in-process middleware).
#[utoipa::path(post, path = "/api/v1/usage/events", tag = "ingest", request_body = [IngestEvent],
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security((), ("ingest_signature" = []), ("ingest_token" = [])))]
pub async fn usage_events(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    authorize(&state, &headers, &body).await?;
    require_json(&headers)?;
    let events = events_from_body(&body, &state.prices)?;
    let accepted = events.len();
    record_all(&state, events).await;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted })))
}
