//! Alert channels and their deliveries (instance admins only: a webhook URL is a credential).
//! Each handler parses, calls `rules::alerts` and maps the answer; URLs are shown in their display form only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tollgate_alerts::ChannelFormat;
use tollgate_store::{AlertChannelRecord, AlertDelivery};
use utoipa::{IntoParams, ToSchema};

use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::rules::Actor;
use crate::rules::alerts::{self, ChannelDraft};

/// Most deliveries one listing returns.
const MAX_DELIVERIES: u32 = 1000;

/// How a channel's deliveries are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertChannelFormat {
    /// Signed JSON.
    Generic,
    /// A Slack-compatible incoming webhook.
    Slack,
}

impl AlertChannelFormat {
    fn of(stored: &str) -> Self {
        match stored.parse::<ChannelFormat>() {
            Ok(ChannelFormat::Slack) => Self::Slack,
            _ => Self::Generic,
        }
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertDeliveryStatus {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; another attempt follows.
    Failed,
    /// It failed and no attempt follows.
    GaveUp,
}

impl AlertDeliveryStatus {
    fn of(stored: &str) -> Self {
        match stored {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => Self::GaveUp,
        }
    }
}

/// An alert channel as listed: the URL in its display form only (it is stored sealed).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelView {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// `generic` (signed JSON) or `slack` (Slack-compatible incoming webhook).
    pub format: AlertChannelFormat,
    /// The webhook URL's display form, holding no secret: scheme, host, port and a masked path,
    /// query dropped, e.g. `https://hooks.slack.com/services/T0…/****`. The URL itself is stored
    /// sealed and never returned.
    pub url: String,
    /// Who made it (`user:<email>`, `cli:<os user>`).
    pub created_by: String,
    /// When, epoch ms.
    pub created_at: i64,
}

impl From<&AlertChannelRecord> for ChannelView {
    fn from(r: &AlertChannelRecord) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            format: AlertChannelFormat::of(&r.format),
            url: alerts::shown_url(r),
            created_by: r.created_by.clone(),
            created_at: r.created_at_ms,
        }
    }
}

/// The channels.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelList {
    /// By id.
    pub channels: Vec<ChannelView>,
}

/// A new channel.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelCreate {
    /// Unique name, 1 to 100 characters.
    pub name: String,
    /// Webhook URL (http or https). Loopback, private and link-local addresses need the
    /// instance's `upstream_allowlist`. Stored sealed with the master key; only its display
    /// form is ever returned.
    pub url: String,
    /// `generic` (default) or `slack`.
    pub format: Option<String>,
}

/// A channel just made, with its signing secret (shown this once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelCreated {
    /// The channel.
    pub channel: ChannelView,
    /// `whsec_…`: generic deliveries carry `X-Tollgate-Signature: sha256=<hex HMAC-SHA256 of
    /// "{X-Tollgate-Timestamp}.{body}">` keyed by it.
    pub secret: String,
}

/// One delivery attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// Id.
    pub id: i64,
    /// The channel.
    pub channel_id: i64,
    /// The channel's name (empty if it is gone).
    pub channel_name: String,
    /// The alert's once-only key, the same on every attempt, e.g. `budget:3:1764547200000:80`.
    pub dedup_key: String,
    /// `budget_crossing`, `key_expiring`, `route_error_rate`, `upstream_unreachable`,
    /// `degraded`, `spool_not_draining` or `test`.
    pub kind: String,
    /// One line for people.
    pub summary: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// When the attempt started, epoch ms.
    pub at: i64,
    /// `delivered`, `failed` (another attempt follows) or `gave_up`.
    pub status: AlertDeliveryStatus,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<i32>,
    /// Time to the answer or the failure, ms.
    pub latency_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
}

impl DeliveryView {
    fn new(d: &AlertDelivery, channels: &[AlertChannelRecord]) -> Self {
        Self {
            id: d.id,
            channel_id: d.channel_id,
            channel_name: channels
                .iter()
                .find(|c| c.id == d.channel_id)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            dedup_key: d.dedup_key.clone(),
            kind: d.kind.clone(),
            summary: d.summary.clone(),
            attempt: d.attempt,
            at: d.at_ms,
            status: AlertDeliveryStatus::of(&d.status),
            http_status: d.http_status,
            latency_ms: d.latency_ms,
            error: d.error.clone(),
        }
    }
}

/// Delivery attempts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
}

/// The attempt a test made.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestDelivery {
    /// The one attempt (no retries: its result is the answer).
    pub delivery: DeliveryView,
}

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only this channel's.
    pub channel_id: Option<i64>,
    /// At most this many, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// Lists the alert channels (instance admins).
#[utoipa::path(get, path = "/api/v1/alerts/channels", tag = "alerts",
    responses((status = 200, body = ChannelList), (status = 403, body = ErrorBody)))]
pub async fn list_channels(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<ChannelList>> {
    let channels = alerts::list(&state.rules(), &Actor::Console(&caller)).await?;
    Ok(Json(ChannelList {
        channels: channels.iter().map(ChannelView::from).collect(),
    }))
}

/// Creates an alert channel (instance admins); its secret is shown once. Needs a master key
/// (409 `no_master_key` without one).
#[utoipa::path(post, path = "/api/v1/alerts/channels", tag = "alerts", request_body = ChannelCreate,
    responses((status = 201, body = ChannelCreated), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_channel(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<ChannelCreate>,
) -> ApiResult<(StatusCode, Json<ChannelCreated>)> {
    let draft = ChannelDraft {
        name: req.name,
        url: req.url,
        format: req.format,
    };
    let (record, secret) = alerts::create(&state.rules(), &Actor::Console(&caller), draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(ChannelCreated {
            channel: ChannelView::from(&record),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

/// Deletes an alert channel and its deliveries (instance admins).
#[utoipa::path(delete, path = "/api/v1/alerts/channels/{id}", tag = "alerts", params(("id" = i64, Path, description = "Channel id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_channel(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    alerts::delete(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test alert to a channel now (instance admins): one attempt, recorded like any other.
#[utoipa::path(post, path = "/api/v1/alerts/channels/{id}/test", tag = "alerts", params(("id" = i64, Path, description = "Channel id")),
    responses((status = 200, body = TestDelivery), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn test_channel(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TestDelivery>> {
    let rules = state.rules();
    let channel = alerts::openable(&rules, &Actor::Console(&caller), id).await?;
    let dispatcher = state
        .alerts
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured {
            code: "alerts_disabled",
            message: "this server does not deliver alerts".into(),
        })?;
    let attempt = dispatcher.send_test(&channel).await;
    // The attempt is in the store now; show it as stored (with its id) when it can be found.
    let stored = state
        .store
        .list_alert_deliveries(Some(id), 20)
        .await?
        .into_iter()
        .find(|d| d.dedup_key == attempt.dedup_key);
    let mut record = alerts::delivery_record(&attempt);
    if let Some(stored) = stored {
        record = stored;
    }
    let channels = state.store.list_alert_channels().await?;
    Ok(Json(TestDelivery {
        delivery: DeliveryView::new(&record, &channels),
    }))
}

/// Delivery attempts, newest first (instance admins).
#[utoipa::path(get, path = "/api/v1/alerts/deliveries", tag = "alerts", params(DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryList>> {
    caller.require_admin()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_DELIVERIES).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit: must be 1 to {MAX_DELIVERIES}"),
        ));
    }
    let deliveries = state
        .store
        .list_alert_deliveries(query.channel_id, limit)
        .await?;
    let channels = state.store.list_alert_channels().await?;
    Ok(Json(DeliveryList {
        deliveries: deliveries
            .iter()
            .map(|d| DeliveryView::new(d, &channels))
            .collect(),
    }))
}

/// The alert rules this server evaluates, as configured in `[alerts]` (read-only here). Budget
/// thresholds belong to each limit (`alert_at`) and are shown with the limits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertRules {
    /// Seconds between evaluations; one instance evaluates at a time.
    pub evaluate_interval_secs: u64,
    /// Days before a key's expiry at which it is announced (each once).
    pub key_expiry_days: Vec<u32>,
    /// A route alerts above this share of 5xx answers, percent...
    pub route_error_rate_pct: f64,
    /// ...with at least this many calls...
    pub route_error_min_calls: u64,
    /// ...over this window, seconds.
    pub route_error_window_secs: u64,
    /// An upstream alerts after refusing every connection this long, seconds.
    pub upstream_unreachable_secs: u64,
    /// The store or Redis alerts after running degraded this long, seconds.
    pub degraded_secs: u64,
    /// The spool alerts after holding events without shrinking this long, seconds.
    pub spool_stall_secs: u64,
    /// An ongoing condition is announced again after this long, seconds.
    pub renotify_secs: u64,
}

/// The alert rules in effect (instance admins). 404 where this server delivers no alerts.
#[utoipa::path(get, path = "/api/v1/alerts/rules", tag = "alerts",
    responses((status = 200, body = AlertRules), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rules(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<AlertRules>> {
    caller.require_admin()?;
    state
        .alert_rules
        .as_deref()
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("this server evaluates no alert rules".into()))
}
