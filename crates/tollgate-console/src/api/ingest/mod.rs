//! Usage ingest for edge gateways, other proxies and the in-process middleware:
//! `POST /api/v1/usage/events` here, and the rules the seed's `POST /api/usage-log`
//! ([`super::compat::usage`]) shares. Authenticated by the ingest secret (an
//! HMAC of `"{X-Tollgate-Timestamp}.{body}"`, the timestamp within five minutes of now, or the
//! secret as a bearer token); open only when explicitly configured. Events go through the same
//! writer as the gateway's, so a repeated event id is stored once; an event without an id gets
//! one derived from its content, so a replayed batch counts once.

mod attribute;
mod validate;

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tollgate_core::UsageEvent;
use utoipa::ToSchema;
use uuid::Uuid;

pub use attribute::RouteIndex;
use attribute::attribute;
pub use validate::{
    Parsed, Rejection, TimeWindow, UsageLog, events_from_body, usage_logs_from_body,
};

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

/// The seed's answer: its `status` and `count`, plus what the v1 answer says.
#[derive(Debug, Serialize, ToSchema)]
pub struct Logged {
    /// Always `logged`.
    pub status: &'static str,
    /// Events accepted.
    pub count: usize,
    /// Events accepted (the same as `count`).
    pub accepted: usize,
    /// Events of a batch that were refused, each with its index and the field at fault.
    pub rejected: Vec<Rejection>,
    /// Fields that were ignored because the server does not know them.
    pub ignored_fields: Vec<String>,
}

/// The v1 answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Events accepted (repeated ids are accepted and stored once).
    pub accepted: usize,
    /// Events of a batch that were refused, each with its index and the field at fault.
    pub rejected: Vec<Rejection>,
    /// Fields that were ignored because the server does not know them.
    pub ignored_fields: Vec<String>,
}

/// The window a reported event's time must fall in, now.
pub(crate) fn time_window(state: &ConsoleState) -> TimeWindow {
    TimeWindow {
        now_ms: tollgate_core::time::now_ms(),
        retention_days: state.settings.retention_days,
    }
}

/// Attributes the events read, then hands them to the usage sink; answers how many were
/// accepted, the refused ones and the ignored fields.
pub(crate) async fn accept(state: &ConsoleState, mut parsed: Parsed) -> ApiResult<Accepted> {
    attribute(state, &mut parsed).await?;
    parsed.refuse_if_empty()?;
    let accepted = parsed.events.len();
    record_all(state, parsed.events.into_iter().map(|(_, e)| e).collect()).await;
    Ok(Accepted {
        accepted,
        rejected: parsed.rejected,
        ignored_fields: parsed.ignored_fields.into_iter().collect(),
    })
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

/// Records full usage events (an edge worker, another proxy, the in-process middleware): one
/// object or a batch. In a batch each bad event is refused on its own and named by index; the
/// good ones are stored. Unknown fields are ignored and named.
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
    let parsed = events_from_body(&body, &state.prices.current(), time_window(&state))?;
    let accepted = accept(&state, parsed).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
