//! What the gateway governs with: limits, per-key model allow-lists, and the records of alert
//! delivery (channels, attempts, once-only claims, leader leases).
//!
//! The store keeps a limit's definition as opaque JSON (`spec`); `tollgate-limits` owns its meaning.

use async_trait::async_trait;
use serde::Serialize;

use crate::StoreResult;

/// Who a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum LimitOwner {
    /// Every call through the instance.
    Instance,
    /// One team's keys.
    Team(i64),
    /// One key.
    Key(i64),
    /// One route.
    Route(i64),
}

/// A stored limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitRecord {
    /// Id.
    pub id: i64,
    /// What it applies to.
    pub owner: LimitOwner,
    /// The limit as JSON, as `tollgate-limits` wrote it.
    pub spec: String,
    /// Who made it (`user:…`, `cli:…`).
    pub created_by: String,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Last change, epoch ms.
    pub updated_at_ms: i64,
}

/// An alert channel as stored: the webhook URL and the signing secret only sealed.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct AlertChannelRecord {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// `generic` or `slack`.
    pub format: String,
    /// Where deliveries are posted, sealed with the master key; `None` only for a channel made
    /// before the URL was sealed (migration 0013) and not sealed since (no master key at start).
    #[serde(skip)]
    pub sealed_url: Option<Vec<u8>>,
    /// The URL as shown: scheme, host, port and a masked path, no secret. Empty for a channel
    /// not sealed yet.
    pub url_display: String,
    /// The plain URL of a channel made before migration 0013 and not sealed yet; `None` once
    /// sealed (the column is then cleared).
    #[serde(skip)]
    pub legacy_url: Option<String>,
    /// The signing secret, sealed with the master key.
    #[serde(skip)]
    pub sealed_secret: Vec<u8>,
    /// Who made it.
    pub created_by: String,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
}

impl std::fmt::Debug for AlertChannelRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertChannelRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url_display", &self.url_display)
            .field("sealed", &self.sealed_url.is_some())
            .field("created_by", &self.created_by)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

/// A channel to create.
#[derive(Clone)]
pub struct NewAlertChannel {
    /// Unique name.
    pub name: String,
    /// `generic` or `slack`.
    pub format: String,
    /// Where deliveries are posted, sealed.
    pub sealed_url: Vec<u8>,
    /// The URL as shown (no secret).
    pub url_display: String,
    /// The signing secret, sealed.
    pub sealed_secret: Vec<u8>,
    /// Who makes it.
    pub created_by: String,
}

impl std::fmt::Debug for NewAlertChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAlertChannel")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url_display", &self.url_display)
            .finish_non_exhaustive()
    }
}

/// One delivery attempt of one alert to one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertDelivery {
    /// Id (0 before it is stored).
    pub id: i64,
    /// The channel.
    pub channel_id: i64,
    /// The alert's once-only key, e.g. `budget:3:1764547200000:80`.
    pub dedup_key: String,
    /// The alert kind, e.g. `budget_crossing`.
    pub kind: String,
    /// One line for people.
    pub summary: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// When it was made, epoch ms.
    pub at_ms: i64,
    /// `delivered`, `failed` (will be retried) or `gave_up`.
    pub status: String,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<i32>,
    /// Time to the answer or the failure.
    pub latency_ms: i64,
    /// What went wrong, when something did.
    pub error: Option<String>,
}

/// Limits and per-key model allow-lists.
#[async_trait]
pub trait LimitQueries {
    /// Stores a limit; `NotFound` naming the owner if that team, key or route does not exist.
    async fn create_limit(
        &self,
        owner: LimitOwner,
        spec: &str,
        created_by: &str,
    ) -> StoreResult<LimitRecord>;
    /// Replaces a limit's definition; `NotFound` if no such limit.
    async fn update_limit(&self, id: i64, spec: &str) -> StoreResult<LimitRecord>;
    /// Deletes a limit; `NotFound` if no such limit.
    async fn delete_limit(&self, id: i64) -> StoreResult<()>;
    /// One limit.
    async fn get_limit(&self, id: i64) -> StoreResult<Option<LimitRecord>>;
    /// Every limit, by id.
    async fn list_limits(&self) -> StoreResult<Vec<LimitRecord>>;
    /// Sets (`Some`) or clears (`None`) a key's model patterns; `NotFound` if no such key.
    async fn set_key_models(&self, key_id: i64, patterns: Option<&str>) -> StoreResult<()>;
    /// Every key that has model patterns, with them, by key id.
    async fn key_models(&self) -> StoreResult<Vec<(i64, String)>>;
}

/// Alert channels, delivery attempts, once-only claims and leases.
#[async_trait]
pub trait AlertQueries {
    /// Stores a channel; `Conflict` naming it if the name is taken.
    async fn create_alert_channel(
        &self,
        channel: NewAlertChannel,
    ) -> StoreResult<AlertChannelRecord>;
    /// Every channel, by id.
    async fn list_alert_channels(&self) -> StoreResult<Vec<AlertChannelRecord>>;
    /// One channel.
    async fn get_alert_channel(&self, id: i64) -> StoreResult<Option<AlertChannelRecord>>;
    /// Stores a channel's URL sealed, with its display form, and clears the plain URL column:
    /// how a channel made before the URL was sealed is sealed at start. `NotFound` if no such
    /// channel.
    async fn seal_alert_channel_url(
        &self,
        id: i64,
        sealed_url: &[u8],
        url_display: &str,
    ) -> StoreResult<()>;
    /// Deletes a channel and its deliveries; `NotFound` if no such channel.
    async fn delete_alert_channel(&self, id: i64) -> StoreResult<()>;
    /// Keeps one delivery attempt; returns its id.
    async fn record_alert_delivery(&self, delivery: &AlertDelivery) -> StoreResult<i64>;
    /// The newest attempts first, of one channel or all, at most `limit`.
    async fn list_alert_deliveries(
        &self,
        channel_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AlertDelivery>>;
    /// Claims `dedup_key` until `now_ms + ttl_ms`: true for the first claimer (or when an earlier
    /// claim has expired), false while another claim holds. Atomic across instances.
    async fn claim_alert(&self, dedup_key: &str, now_ms: i64, ttl_ms: i64) -> StoreResult<bool>;
    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`: true when `holder`
    /// holds it afterwards. Atomic across instances.
    async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool>;
}
