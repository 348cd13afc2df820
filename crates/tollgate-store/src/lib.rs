//! Storage traits of tollgate, split by area. One crate per backend implements them
//! (`tollgate-store-sqlite`, `tollgate-store-postgres`); [`testing`] is the story both must pass.

use async_trait::async_trait;
use serde::Serialize;
use tollgate_core::llm::CredentialHeader;
use tollgate_core::usage::HISTOGRAM_LEN;
use tollgate_core::{KeyHash, RouteKind, UsageEvent};

mod accounts;
mod analytics;
mod counters;
mod edge;
mod governance;
mod models;
mod prices;
pub mod private;
pub mod rollup;
#[cfg(feature = "testing")]
pub mod testing;

pub use accounts::{
    AccessToken, AccessTokenQueries, AuditEntry, AuditFilter, AuditQueries, Invitation,
    InvitationQueries, MemberQueries, Membership, NewAccessToken, NewAuditEntry, NewInvitation,
    NewUser, SessionQueries, SessionRecord, SettingQueries, User, UserQueries,
};
pub use analytics::{
    AggregateOrder, AnalyticsQueries, EventCursor, EventFilter, Grouping, HourlyEvents,
    LatencyGroup, PageSpans, RollupFilter, StoredEvent, UsageAggregate, search_by_hours,
};
pub use counters::{Counter, CounterQueries, CounterReading, NewReading};
pub use edge::{EdgeChange, EdgeEntity, EdgeKey, EdgeQueries, EdgeToken, NewEdgeToken};
pub use governance::{
    AlertChannelRecord, AlertDelivery, AlertQueries, LimitOwner, LimitQueries, LimitRecord,
    NewAlertChannel,
};
pub use models::{ModelQueries, ModelRecord, NewTarget, TargetRecord, TargetUpdate};
pub use prices::{PriceOverride, PriceQueries};

/// Name of the team every instance has from its first start.
pub const DEFAULT_TEAM: &str = "default";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name or prefix is taken.
    #[error("{0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The store cannot be reached (connection refused, file unwritable, pool timed out).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt store. Logged, never shown to clients.
    #[error("store error: {0}")]
    Internal(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A team: owns keys and routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
}

/// An API key as stored: never the secret, only its hash, display prefix and (optionally) a sealed copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    /// Id.
    pub id: i64,
    /// Owning team.
    pub team_id: i64,
    /// Owning team's name.
    pub team_name: String,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// SHA-256 of the key.
    pub key_hash: KeyHash,
    /// Display prefix, e.g. `ntk_AbCd…wxyz`.
    pub prefix: String,
    /// The key sealed with the master key, when one was configured at creation.
    #[serde(skip)]
    pub sealed_key: Option<Vec<u8>>,
    /// Who created it (`cli:<user>`, a user's e-mail, …).
    pub created_by: Option<String>,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at_ms: Option<i64>,
    /// Last use, epoch ms; `None` is "never used".
    pub last_used_at_ms: Option<i64>,
    /// The routes it may call; `None` is every route of its team plus shared routes.
    pub route_ids: Option<Vec<i64>>,
}

impl KeyRecord {
    /// Whether the key may call `route`.
    pub fn may_call(&self, route: &RouteRecord) -> bool {
        match &self.route_ids {
            Some(ids) => ids.contains(&route.id),
            None => route.team_id.is_none_or(|t| t == self.team_id),
        }
    }
}

/// What a new key is made of.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Owning team.
    pub team_id: i64,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// SHA-256 of the key.
    pub key_hash: KeyHash,
    /// Display prefix.
    pub prefix: String,
    /// Sealed copy, when a master key is configured.
    pub sealed_key: Option<Vec<u8>>,
    /// Creator.
    pub created_by: Option<String>,
    /// Expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
    /// Allowed routes; `None` for all of the team's.
    pub route_ids: Option<Vec<i64>>,
}

/// A route as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteRecord {
    /// Id.
    pub id: i64,
    /// Owning team; `None` for a route shared by every team.
    pub team_id: Option<i64>,
    /// Unique name.
    pub name: String,
    /// Unique path prefix, e.g. `/openai`.
    pub prefix: String,
    /// Upstream base URL, e.g. `https://api.openai.com`.
    pub upstream_url: String,
    /// What the gateway understands of the traffic.
    pub kind: RouteKind,
    /// Whether the prefix is removed before forwarding.
    pub strip_prefix: bool,
    /// Connect timeout, ms.
    pub connect_timeout_ms: i64,
    /// Longest wait for the upstream's response head, and between body chunks, ms.
    pub timeout_ms: i64,
    /// Disabled routes answer `no_route`.
    pub enabled: bool,
    /// The upstream credential sealed with the master key; never returned by any API.
    #[serde(skip)]
    pub sealed_credential: Option<Vec<u8>>,
    /// How the credential is sent; `None`: the kind's way (`Authorization: Bearer`, `x-api-key`).
    pub credential_header: Option<CredentialHeader>,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Last change, epoch ms.
    pub updated_at_ms: i64,
}

/// What a new route is made of.
#[derive(Debug, Clone)]
pub struct NewRoute {
    /// Owning team; `None` for shared.
    pub team_id: Option<i64>,
    /// Unique name.
    pub name: String,
    /// Unique path prefix.
    pub prefix: String,
    /// Upstream base URL.
    pub upstream_url: String,
    /// Kind.
    pub kind: RouteKind,
    /// Strip the prefix before forwarding.
    pub strip_prefix: bool,
    /// Connect timeout, ms.
    pub connect_timeout_ms: i64,
    /// Response and idle timeout, ms.
    pub timeout_ms: i64,
    /// Sealed upstream credential.
    pub sealed_credential: Option<Vec<u8>>,
    /// How the credential is sent; `None`: the kind's way.
    pub credential_header: Option<CredentialHeader>,
}

/// One hourly roll-up row: per hour, team, key, route, model and status class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourlyRollup {
    /// Start of the hour, epoch ms.
    pub hour_ms: i64,
    /// Team (0 when unattributed).
    pub team_id: i64,
    /// Key (0 when unattributed).
    pub key_id: i64,
    /// Route (0 when none matched).
    pub route_id: i64,
    /// Model (empty when none).
    pub model: String,
    /// 2, 3, 4, 5, or 0.
    pub status_class: i16,
    /// Calls.
    pub calls: i64,
    /// Calls with status ≥ 400.
    pub errors: i64,
    /// Sum of latencies, µs.
    pub latency_sum_us: i64,
    /// Latency histogram over `tollgate_core::usage::LATENCY_BUCKETS_MS`.
    pub latency_hist: [i64; HISTOGRAM_LEN],
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
    /// Cached prompt tokens.
    pub cached_tokens: i64,
    /// Reasoning tokens.
    pub reasoning_tokens: i64,
    /// Calls whose tokens were estimated.
    pub estimated_calls: i64,
    /// Cost of the priced calls, US dollars.
    pub cost_usd: f64,
    /// Calls that used tokens of a model without a price ("no price", not $0).
    pub unpriced_calls: i64,
}

/// Teams.
#[async_trait]
pub trait TeamQueries {
    /// The team with this name, created if missing.
    async fn ensure_team(&self, name: &str) -> StoreResult<Team>;
    /// Creates a team; `Conflict` if the name is taken.
    async fn create_team(&self, name: &str) -> StoreResult<Team>;
    /// The team with this name.
    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>>;
    /// The team with this id.
    async fn team_by_id(&self, id: i64) -> StoreResult<Option<Team>>;
    /// Every team, by name.
    async fn list_teams(&self) -> StoreResult<Vec<Team>>;
    /// Renames a team; `NotFound` if no such team, `Conflict` if the name is taken.
    async fn rename_team(&self, id: i64, name: &str) -> StoreResult<Team>;
    /// Deletes a team with its memberships and invitations; `NotFound` if no such team, `Conflict`
    /// if it still owns keys or routes (they must be moved or deleted first).
    async fn delete_team(&self, id: i64) -> StoreResult<()>;
}

/// A change to a key; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New expiry: `Some(None)` removes it.
    pub expires_at_ms: Option<Option<i64>>,
    /// New allowed routes: `Some(None)` for all of the team's, `Some(Some(ids))` for a list.
    pub route_ids: Option<Option<Vec<i64>>>,
    /// A new sealed copy of the key (re-sealing in the current format).
    pub sealed_key: Option<Vec<u8>>,
}

/// A change to a route; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct RouteUpdate {
    /// New name.
    pub name: Option<String>,
    /// New prefix.
    pub prefix: Option<String>,
    /// New upstream URL.
    pub upstream_url: Option<String>,
    /// New kind.
    pub kind: Option<RouteKind>,
    /// Strip the prefix or not.
    pub strip_prefix: Option<bool>,
    /// Connect timeout, ms.
    pub connect_timeout_ms: Option<i64>,
    /// Response and idle timeout, ms.
    pub timeout_ms: Option<i64>,
    /// Enabled or not.
    pub enabled: Option<bool>,
    /// New sealed credential: `Some(None)` removes it.
    pub sealed_credential: Option<Option<Vec<u8>>>,
    /// New credential header: `Some(None)` goes back to the kind's.
    pub credential_header: Option<Option<CredentialHeader>>,
    /// New owning team: `Some(None)` shares it with every team.
    pub team_id: Option<Option<i64>>,
}

/// API keys.
#[async_trait]
pub trait KeyQueries {
    /// Stores a new key; `Conflict` if the hash exists, `NotFound` if the team or a route does not.
    async fn create_key(&self, key: NewKey) -> StoreResult<KeyRecord>;
    /// The key with this hash, revoked and expired ones included.
    async fn key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<KeyRecord>>;
    /// The key with this id.
    async fn key_by_id(&self, id: i64) -> StoreResult<Option<KeyRecord>>;
    /// Keys, newest first; of one team when given.
    async fn list_keys(&self, team_id: Option<i64>) -> StoreResult<Vec<KeyRecord>>;
    /// Marks the key revoked at `at_ms`; `NotFound` if no such key. Revoking twice keeps the first time.
    async fn revoke_key(&self, id: i64, at_ms: i64) -> StoreResult<KeyRecord>;
    /// Deletes the key (its usage rows keep their key id); `NotFound` if no such key.
    async fn delete_key(&self, id: i64) -> StoreResult<()>;
    /// Applies `update` in one transaction; `NotFound` if no such key or a listed route is missing.
    async fn update_key(&self, id: i64, update: KeyUpdate) -> StoreResult<KeyRecord>;
}

/// Routes.
#[async_trait]
pub trait RouteQueries {
    /// Stores a new route; `Conflict` if the name or prefix is taken.
    async fn create_route(&self, route: NewRoute) -> StoreResult<RouteRecord>;
    /// Every route, by prefix.
    async fn list_routes(&self) -> StoreResult<Vec<RouteRecord>>;
    /// The route with this name.
    async fn route_by_name(&self, name: &str) -> StoreResult<Option<RouteRecord>>;
    /// Deletes the route with this name; `NotFound` if none.
    async fn delete_route(&self, name: &str) -> StoreResult<()>;
    /// The route with this id.
    async fn route_by_id(&self, id: i64) -> StoreResult<Option<RouteRecord>>;
    /// Applies `update` and sets `updated_at`; `NotFound` if no such route (or team), `Conflict` if
    /// the new name or prefix is taken.
    async fn update_route(&self, id: i64, update: RouteUpdate) -> StoreResult<RouteRecord>;
}

/// Usage events and roll-ups.
#[async_trait]
pub trait UsageQueries {
    /// Writes a batch in one transaction: inserts each event whose `event_id` is new, adds those to
    /// the hourly roll-ups, and moves the keys' `last_used_at` forward. Fills `key_id` / `team_id`
    /// from `key_hash` where only the hash is known. Returns how many events were new.
    async fn write_usage(&self, events: &[UsageEvent]) -> StoreResult<u64>;
    /// Number of raw events stored.
    async fn count_usage(&self) -> StoreResult<i64>;
    /// The newest raw events, newest first.
    async fn recent_usage(&self, limit: i64) -> StoreResult<Vec<UsageEvent>>;
    /// Roll-up rows with `from_ms <= hour_ms < to_ms`.
    async fn rollups(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<HourlyRollup>>;
}

/// A whole store: every area plus the instance-wide operations.
#[async_trait]
pub trait Store:
    TeamQueries
    + KeyQueries
    + RouteQueries
    + UsageQueries
    + UserQueries
    + SessionQueries
    + AccessTokenQueries
    + MemberQueries
    + InvitationQueries
    + AuditQueries
    + SettingQueries
    + AnalyticsQueries
    + CounterQueries
    + LimitQueries
    + AlertQueries
    + EdgeQueries
    + ModelQueries
    + PriceQueries
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations and makes sure the `default` team exists.
    async fn migrate(&self) -> StoreResult<()>;
    /// One round trip, to check the store answers.
    async fn ping(&self) -> StoreResult<()>;
    /// A number that grows whenever a key, route or team changes, so that every running instance
    /// notices changes made elsewhere (the CLI, another instance) by polling it.
    async fn revision(&self) -> StoreResult<i64>;
    /// Closes the connections.
    async fn close(&self);
}
