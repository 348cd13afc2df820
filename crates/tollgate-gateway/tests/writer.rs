//! The usage writer and its spool against the real SQLite store: batching, queue overflow, a store
//! that goes away and comes back, replay at start (torn line included), shutdown, and a store that
//! refuses one event. Every test checks that no event is lost and none is stored twice.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tempfile::TempDir;
use tollgate_core::Role;
use tollgate_core::{KeyHash, UsageEvent};
use tollgate_gateway::metrics::Metrics;
use tollgate_gateway::writer::{Durability, UsageSink, UsageWriter, WriterConfig};
use tollgate_store::{
    AccessToken, AccessTokenQueries, AggregateOrder, AlertChannelRecord, AlertDelivery,
    AlertQueries, AnalyticsQueries, AuditEntry, AuditFilter, AuditQueries, Counter, CounterQueries,
    CounterReading, EdgeChange, EdgeKey, EdgeQueries, EdgeToken, EventCursor, EventFilter,
    Grouping, HourlyRollup, Invitation, InvitationQueries, KeyQueries, KeyRecord, KeyUpdate,
    LimitOwner, LimitQueries, LimitRecord, MemberQueries, Membership, ModelQueries, ModelRecord,
    NewAccessToken, NewAlertChannel, NewAuditEntry, NewEdgeToken, NewInvitation, NewKey,
    NewReading, NewRoute, NewTarget, NewUser, PriceOverride, PriceQueries, RollupFilter,
    RouteQueries, RouteRecord, RouteUpdate, SessionQueries, SessionRecord, SettingQueries, Store,
    StoreError, StoreResult, StoredEvent, TargetRecord, TargetUpdate, Team, TeamQueries,
    UsageAggregate, UsageQueries, User, UserQueries,
};
use tollgate_store_sqlite::SqliteStore;
use uuid::Uuid;

/// A real SQLite store with switches: unavailable while `down` is set; with `fail_after_commit`, a
/// write commits and then reports `Unavailable` (a lost answer); events in `refuse` make a batch
/// fail the way a constraint would. Records every committed batch.
struct FlakyStore {
    inner: SqliteStore,
    down: AtomicBool,
    fail_after_commit: AtomicBool,
    refuse: Mutex<HashSet<Uuid>>,
    batches: Mutex<Vec<Vec<Uuid>>>,
    /// Pause before each write, ms: a slow store makes a replay take long.
    delay_ms: AtomicU64,
    /// Writes running now, and the most that ever ran at once.
    writing: AtomicU64,
    most_writing: AtomicU64,
}

impl FlakyStore {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.batches.lock().unwrap().iter().map(Vec::len).collect()
    }

    /// Every event id in the order the store committed them.
    fn committed_order(&self) -> Vec<Uuid> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .copied()
            .collect()
    }

    async fn write_usage_now(&self, events: &[UsageEvent]) -> StoreResult<u64> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.unavailable()?;
        {
            let refuse = self.refuse.lock().unwrap();
            if events.iter().any(|e| refuse.contains(&e.event_id)) {
                return Err(StoreError::Internal("test switch: event refused".into()));
            }
        }
        let new = self.inner.write_usage(events).await?;
        self.batches
            .lock()
            .unwrap()
            .push(events.iter().map(|e| e.event_id).collect());
        if self.fail_after_commit.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "test switch: answer lost after commit".into(),
            ));
        }
        Ok(new)
    }

    fn unavailable(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("test switch: store down".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl TeamQueries for FlakyStore {
    async fn ensure_team(&self, name: &str) -> StoreResult<Team> {
        self.inner.ensure_team(name).await
    }
    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
        self.inner.team_by_name(name).await
    }
    async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        self.inner.list_teams().await
    }
    async fn create_team(&self, name: &str) -> StoreResult<Team> {
        self.inner.create_team(name).await
    }
    async fn team_by_id(&self, id: i64) -> StoreResult<Option<Team>> {
        self.inner.team_by_id(id).await
    }
    async fn rename_team(&self, id: i64, name: &str) -> StoreResult<Team> {
        self.inner.rename_team(id, name).await
    }
    async fn delete_team(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_team(id).await
    }
}

#[async_trait]
impl KeyQueries for FlakyStore {
    async fn create_key(&self, key: NewKey) -> StoreResult<KeyRecord> {
        self.inner.create_key(key).await
    }
    async fn key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<KeyRecord>> {
        self.inner.key_by_hash(hash).await
    }
    async fn key_by_id(&self, id: i64) -> StoreResult<Option<KeyRecord>> {
        self.inner.key_by_id(id).await
    }
    async fn list_keys(&self, team_id: Option<i64>) -> StoreResult<Vec<KeyRecord>> {
        self.inner.list_keys(team_id).await
    }
    async fn revoke_key(&self, id: i64, at_ms: i64) -> StoreResult<KeyRecord> {
        self.inner.revoke_key(id, at_ms).await
    }
    async fn delete_key(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_key(id).await
    }
    async fn update_key(&self, id: i64, update: KeyUpdate) -> StoreResult<KeyRecord> {
        self.inner.update_key(id, update).await
    }
}

#[async_trait]
impl RouteQueries for FlakyStore {
    async fn create_route(&self, route: NewRoute) -> StoreResult<RouteRecord> {
        self.inner.create_route(route).await
    }
    async fn list_routes(&self) -> StoreResult<Vec<RouteRecord>> {
        self.inner.list_routes().await
    }
    async fn route_by_name(&self, name: &str) -> StoreResult<Option<RouteRecord>> {
        self.inner.route_by_name(name).await
    }
    async fn delete_route(&self, name: &str) -> StoreResult<()> {
        self.inner.delete_route(name).await
    }
    async fn route_by_id(&self, id: i64) -> StoreResult<Option<RouteRecord>> {
        self.inner.route_by_id(id).await
    }
    async fn update_route(&self, id: i64, update: RouteUpdate) -> StoreResult<RouteRecord> {
        self.inner.update_route(id, update).await
    }
}

#[async_trait]
impl UsageQueries for FlakyStore {
    async fn write_usage(&self, events: &[UsageEvent]) -> StoreResult<u64> {
        let now = self.writing.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_writing.fetch_max(now, Ordering::SeqCst);
        let result = self.write_usage_now(events).await;
        self.writing.fetch_sub(1, Ordering::SeqCst);
        result
    }
    async fn count_usage(&self) -> StoreResult<i64> {
        self.inner.count_usage().await
    }
    async fn recent_usage(&self, limit: i64) -> StoreResult<Vec<UsageEvent>> {
        self.inner.recent_usage(limit).await
    }
    async fn rollups(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<HourlyRollup>> {
        self.inner.rollups(from_ms, to_ms).await
    }
}

#[async_trait]
impl UserQueries for FlakyStore {
    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.inner.create_user(user).await
    }
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.inner.user_by_id(id).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.inner.user_by_email(email).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.inner.list_users().await
    }
    async fn count_users(&self) -> StoreResult<i64> {
        self.inner.count_users().await
    }
    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()> {
        self.inner.set_password(user_id, password_hash).await
    }
    async fn set_user_disabled(
        &self,
        user_id: i64,
        disabled_at_ms: Option<i64>,
    ) -> StoreResult<User> {
        self.inner.set_user_disabled(user_id, disabled_at_ms).await
    }
    async fn set_user_admin(&self, user_id: i64, is_admin: bool) -> StoreResult<User> {
        self.inner.set_user_admin(user_id, is_admin).await
    }
    async fn set_display_name(&self, user_id: i64, display_name: &str) -> StoreResult<User> {
        self.inner.set_display_name(user_id, display_name).await
    }
    async fn touch_login(&self, user_id: i64, at_ms: i64) -> StoreResult<()> {
        self.inner.touch_login(user_id, at_ms).await
    }
}

#[async_trait]
impl SessionQueries for FlakyStore {
    async fn create_session(&self, session: SessionRecord) -> StoreResult<()> {
        self.inner.create_session(session).await
    }
    async fn session_by_hash(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.inner.session_by_hash(id_hash).await
    }
    async fn revoke_session(&self, id_hash: &str, at_ms: i64) -> StoreResult<()> {
        self.inner.revoke_session(id_hash, at_ms).await
    }
    async fn revoke_user_sessions(&self, user_id: i64, at_ms: i64) -> StoreResult<u64> {
        self.inner.revoke_user_sessions(user_id, at_ms).await
    }
    async fn purge_sessions(&self, before_ms: i64) -> StoreResult<u64> {
        self.inner.purge_sessions(before_ms).await
    }
}

#[async_trait]
impl AccessTokenQueries for FlakyStore {
    async fn create_access_token(&self, token: NewAccessToken) -> StoreResult<AccessToken> {
        self.inner.create_access_token(token).await
    }
    async fn access_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<AccessToken>> {
        self.inner.access_token_by_hash(token_hash).await
    }
    async fn list_access_tokens(&self, user_id: i64) -> StoreResult<Vec<AccessToken>> {
        self.inner.list_access_tokens(user_id).await
    }
    async fn revoke_access_token(
        &self,
        user_id: i64,
        id: i64,
        at_ms: i64,
    ) -> StoreResult<AccessToken> {
        self.inner.revoke_access_token(user_id, id, at_ms).await
    }
    async fn touch_access_token(&self, id: i64, at_ms: i64) -> StoreResult<()> {
        self.inner.touch_access_token(id, at_ms).await
    }
}

#[async_trait]
impl MemberQueries for FlakyStore {
    async fn set_member(&self, team_id: i64, user_id: i64, role: Role) -> StoreResult<Membership> {
        self.inner.set_member(team_id, user_id, role).await
    }
    async fn remove_member(&self, team_id: i64, user_id: i64) -> StoreResult<()> {
        self.inner.remove_member(team_id, user_id).await
    }
    async fn list_members(&self, team_id: i64) -> StoreResult<Vec<Membership>> {
        self.inner.list_members(team_id).await
    }
    async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>> {
        self.inner.memberships_of(user_id).await
    }
}

#[async_trait]
impl InvitationQueries for FlakyStore {
    async fn create_invitation(&self, invitation: NewInvitation) -> StoreResult<Invitation> {
        self.inner.create_invitation(invitation).await
    }
    async fn invitation_by_hash(&self, token_hash: &str) -> StoreResult<Option<Invitation>> {
        self.inner.invitation_by_hash(token_hash).await
    }
    async fn list_invitations(&self, team_id: Option<i64>) -> StoreResult<Vec<Invitation>> {
        self.inner.list_invitations(team_id).await
    }
    async fn mark_invitation_accepted(&self, id: i64, at_ms: i64) -> StoreResult<bool> {
        self.inner.mark_invitation_accepted(id, at_ms).await
    }
    async fn delete_invitation(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_invitation(id).await
    }
}

#[async_trait]
impl AuditQueries for FlakyStore {
    async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry> {
        self.inner.append_audit(entry).await
    }
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditEntry>, i64)> {
        self.inner.list_audit(filter, limit, offset).await
    }
}

#[async_trait]
impl SettingQueries for FlakyStore {
    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        self.inner.setting(name).await
    }
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        self.inner.set_setting(name, value).await
    }
    async fn delete_setting(&self, name: &str) -> StoreResult<()> {
        self.inner.delete_setting(name).await
    }
}

#[async_trait]
impl PriceQueries for FlakyStore {
    async fn list_price_overrides(&self) -> StoreResult<Vec<PriceOverride>> {
        self.inner.list_price_overrides().await
    }
    async fn set_price_override(&self, o: &PriceOverride) -> StoreResult<()> {
        self.inner.set_price_override(o).await
    }
    async fn delete_price_override(&self, model: &str) -> StoreResult<bool> {
        self.inner.delete_price_override(model).await
    }
}

#[async_trait]
impl AnalyticsQueries for FlakyStore {
    async fn aggregate_usage(
        &self,
        filter: &RollupFilter,
        grouping: Grouping,
        order: AggregateOrder,
        limit: i64,
    ) -> StoreResult<Vec<UsageAggregate>> {
        self.inner
            .aggregate_usage(filter, grouping, order, limit)
            .await
    }
    async fn latency_sketches(
        &self,
        filter: &RollupFilter,
        grouping: Grouping,
        groups: Option<&[(i64, String)]>,
    ) -> StoreResult<Vec<tollgate_store::LatencyGroup>> {
        self.inner.latency_sketches(filter, grouping, groups).await
    }
    async fn search_usage(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.inner.search_usage(filter, after, limit).await
    }
    async fn usage_event(&self, id: i64) -> StoreResult<Option<StoredEvent>> {
        self.inner.usage_event(id).await
    }
    async fn delete_usage_before(&self, before_ms: i64, batch: i64) -> StoreResult<u64> {
        self.inner.delete_usage_before(before_ms, batch).await
    }
    async fn trim_usage(&self, max_rows: i64, batch: i64) -> StoreResult<u64> {
        self.inner.trim_usage(max_rows, batch).await
    }
    async fn delete_rollups_before(&self, before_ms: i64) -> StoreResult<u64> {
        self.inner.delete_rollups_before(before_ms).await
    }
}

#[async_trait]
impl CounterQueries for FlakyStore {
    async fn ensure_counter(&self, team_id: i64, name: &str, quota: i64) -> StoreResult<Counter> {
        self.inner.ensure_counter(team_id, name, quota).await
    }
    async fn counter_by_name(&self, team_id: i64, name: &str) -> StoreResult<Option<Counter>> {
        self.inner.counter_by_name(team_id, name).await
    }
    async fn list_counters(&self) -> StoreResult<Vec<Counter>> {
        self.inner.list_counters().await
    }
    async fn set_counter_quota(&self, id: i64, quota: i64) -> StoreResult<Counter> {
        self.inner.set_counter_quota(id, quota).await
    }
    async fn record_reading(
        &self,
        counter_id: i64,
        reading: NewReading,
    ) -> StoreResult<(Counter, CounterReading)> {
        self.inner.record_reading(counter_id, reading).await
    }
    async fn add_to_counter(
        &self,
        counter_id: i64,
        tokens: i64,
        reading: NewReading,
    ) -> StoreResult<(Counter, CounterReading)> {
        self.inner.add_to_counter(counter_id, tokens, reading).await
    }
    async fn revise_reading(
        &self,
        counter_id: i64,
        reading_id: i64,
        figure: Option<i64>,
    ) -> StoreResult<(Counter, Option<CounterReading>)> {
        self.inner
            .revise_reading(counter_id, reading_id, figure)
            .await
    }
    async fn list_readings(
        &self,
        counter_id: i64,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<CounterReading>> {
        self.inner.list_readings(counter_id, before_id, limit).await
    }
    async fn counter_daily(
        &self,
        counter_id: Option<i64>,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<(i64, i64, i64)>> {
        self.inner.counter_daily(counter_id, from_ms, to_ms).await
    }
}

#[async_trait]
impl LimitQueries for FlakyStore {
    async fn create_limit(
        &self,
        owner: LimitOwner,
        spec: &str,
        created_by: &str,
    ) -> StoreResult<LimitRecord> {
        self.inner.create_limit(owner, spec, created_by).await
    }
    async fn update_limit(&self, id: i64, spec: &str) -> StoreResult<LimitRecord> {
        self.inner.update_limit(id, spec).await
    }
    async fn delete_limit(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_limit(id).await
    }
    async fn get_limit(&self, id: i64) -> StoreResult<Option<LimitRecord>> {
        self.inner.get_limit(id).await
    }
    async fn list_limits(&self) -> StoreResult<Vec<LimitRecord>> {
        self.inner.list_limits().await
    }
    async fn set_key_models(&self, key_id: i64, patterns: Option<&str>) -> StoreResult<()> {
        self.inner.set_key_models(key_id, patterns).await
    }
    async fn key_models(&self) -> StoreResult<Vec<(i64, String)>> {
        self.inner.key_models().await
    }
}

#[async_trait]
impl AlertQueries for FlakyStore {
    async fn create_alert_channel(
        &self,
        channel: NewAlertChannel,
    ) -> StoreResult<AlertChannelRecord> {
        self.inner.create_alert_channel(channel).await
    }
    async fn list_alert_channels(&self) -> StoreResult<Vec<AlertChannelRecord>> {
        self.inner.list_alert_channels().await
    }
    async fn get_alert_channel(&self, id: i64) -> StoreResult<Option<AlertChannelRecord>> {
        self.inner.get_alert_channel(id).await
    }
    async fn seal_alert_channel_url(
        &self,
        id: i64,
        sealed_url: &[u8],
        url_display: &str,
    ) -> StoreResult<()> {
        self.inner
            .seal_alert_channel_url(id, sealed_url, url_display)
            .await
    }
    async fn delete_alert_channel(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_alert_channel(id).await
    }
    async fn record_alert_delivery(&self, delivery: &AlertDelivery) -> StoreResult<i64> {
        self.inner.record_alert_delivery(delivery).await
    }
    async fn list_alert_deliveries(
        &self,
        channel_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AlertDelivery>> {
        self.inner.list_alert_deliveries(channel_id, limit).await
    }
    async fn claim_alert(&self, dedup_key: &str, now_ms: i64, ttl_ms: i64) -> StoreResult<bool> {
        self.inner.claim_alert(dedup_key, now_ms, ttl_ms).await
    }
    async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        self.inner.hold_lease(name, holder, now_ms, ttl_ms).await
    }
}

#[async_trait]
impl EdgeQueries for FlakyStore {
    async fn create_edge_token(&self, token: NewEdgeToken) -> StoreResult<EdgeToken> {
        self.inner.create_edge_token(token).await
    }
    async fn edge_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<EdgeToken>> {
        self.inner.edge_token_by_hash(token_hash).await
    }
    async fn list_edge_tokens(&self) -> StoreResult<Vec<EdgeToken>> {
        self.inner.list_edge_tokens().await
    }
    async fn revoke_edge_token(&self, id: i64, at_ms: i64) -> StoreResult<EdgeToken> {
        self.inner.revoke_edge_token(id, at_ms).await
    }
    async fn touch_edge_token(&self, id: i64, at_ms: i64) -> StoreResult<()> {
        self.inner.touch_edge_token(id, at_ms).await
    }
    async fn edge_keys_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<EdgeKey>> {
        self.inner.edge_keys_after(after_id, limit).await
    }
    async fn edge_keys_by_id(&self, ids: &[i64]) -> StoreResult<Vec<EdgeKey>> {
        self.inner.edge_keys_by_id(ids).await
    }
    async fn edge_changes_since(&self, revision: i64, limit: i64) -> StoreResult<Vec<EdgeChange>> {
        self.inner.edge_changes_since(revision, limit).await
    }
    async fn prune_edge_changes(&self, before_ms: i64, batch: i64) -> StoreResult<u64> {
        self.inner.prune_edge_changes(before_ms, batch).await
    }
    async fn edge_feed_pruned_through(&self) -> StoreResult<i64> {
        self.inner.edge_feed_pruned_through().await
    }
}

#[async_trait]
impl ModelQueries for FlakyStore {
    async fn create_target(&self, target: NewTarget) -> StoreResult<TargetRecord> {
        self.inner.create_target(target).await
    }
    async fn list_targets(&self) -> StoreResult<Vec<TargetRecord>> {
        self.inner.list_targets().await
    }
    async fn update_target(&self, id: i64, update: TargetUpdate) -> StoreResult<TargetRecord> {
        self.inner.update_target(id, update).await
    }
    async fn delete_target(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_target(id).await
    }
    async fn create_model(&self, name: &str, settings: &str) -> StoreResult<ModelRecord> {
        self.inner.create_model(name, settings).await
    }
    async fn list_models(&self) -> StoreResult<Vec<ModelRecord>> {
        self.inner.list_models().await
    }
    async fn update_model(&self, id: i64, settings: &str) -> StoreResult<ModelRecord> {
        self.inner.update_model(id, settings).await
    }
    async fn delete_model(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_model(id).await
    }
}

#[async_trait]
impl Store for FlakyStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    async fn migrate(&self) -> StoreResult<()> {
        self.inner.migrate().await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.unavailable()?;
        self.inner.ping().await
    }
    async fn revision(&self) -> StoreResult<i64> {
        self.inner.revision().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

struct Fixture {
    dir: TempDir,
    store: Arc<FlakyStore>,
    metrics: Arc<Metrics>,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
        let inner = SqliteStore::connect(&url).await.unwrap();
        inner.migrate().await.unwrap();
        let store = Arc::new(FlakyStore {
            inner,
            down: AtomicBool::new(false),
            fail_after_commit: AtomicBool::new(false),
            refuse: Mutex::new(HashSet::new()),
            batches: Mutex::new(Vec::new()),
            delay_ms: AtomicU64::new(0),
            writing: AtomicU64::new(0),
            most_writing: AtomicU64::new(0),
        });
        Self {
            dir,
            store,
            metrics: Metrics::new(),
        }
    }

    fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    fn config(
        &self,
        queue_capacity: usize,
        batch_size: usize,
        batch_interval: Duration,
    ) -> WriterConfig {
        WriterConfig {
            queue_capacity,
            batch_size,
            batch_interval,
            spool_dir: self.spool_dir(),
            durability: Durability::Memory,
        }
    }

    fn start(&self, config: WriterConfig) -> (UsageWriter, UsageSink) {
        UsageWriter::start(self.store.clone(), config, self.metrics.clone()).unwrap()
    }

    /// Asserts the store holds exactly `expected`, each once.
    async fn assert_stored_exactly(&self, expected: &[Uuid]) {
        let count = self.store.count_usage().await.unwrap();
        assert_eq!(
            count,
            i64::try_from(expected.len()).unwrap(),
            "rows in the store"
        );
        let stored = self.store.recent_usage(i64::MAX).await.unwrap();
        let mut seen: HashMap<Uuid, usize> = HashMap::new();
        for event in &stored {
            *seen.entry(event.event_id).or_default() += 1;
        }
        for id in expected {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "event {id} must be stored exactly once"
            );
        }
    }

    fn spool_files(&self) -> Vec<PathBuf> {
        spool_files(&self.spool_dir())
    }

    fn assert_nothing_lost(&self) {
        assert_eq!(self.metrics.dropped_now(), 0, "no event may be dropped");
    }
}

fn spool_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("usage-")
        })
        .collect();
    files.sort();
    files
}

fn event(n: usize) -> UsageEvent {
    let mut e = UsageEvent::new(
        tollgate_core::time::now_ms(),
        "POST",
        "/openai/v1/chat/completions",
        200,
    );
    e.model = Some("gpt-4o-mini".into());
    e.tokens.prompt = i64::try_from(n).unwrap();
    e.tokens.completion = 1;
    e.tokens.total = e.tokens.prompt + 1;
    e.latency_us = 1500;
    e
}

fn record(sink: &UsageSink, n: usize) -> Vec<Uuid> {
    (0..n)
        .map(|i| {
            let e = event(i);
            let id = e.event_id;
            sink.record(e);
            id
        })
        .collect()
}

async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_stored(fx: &Fixture, n: i64) {
    wait_for(&format!("{n} stored events"), || async {
        fx.store.count_usage().await.unwrap() == n
    })
    .await;
}

async fn wait_flushed(fx: &Fixture) {
    wait_for("an empty queue and spool", || async {
        fx.metrics.queue_depth_now() == 0 && fx.metrics.spool_bytes_now() == 0
    })
    .await;
}

#[tokio::test]
async fn writes_every_event_once_and_counts_it() {
    let fx = Fixture::new().await;
    let (writer, sink) = fx.start(fx.config(1000, 50, Duration::from_millis(50)));
    let ids = record(&sink, 120);
    assert_eq!(fx.metrics.events_queued.get(), 120);
    assert_eq!(
        fx.metrics.queue_depth_now(),
        120,
        "events in memory are counted"
    );

    wait_flushed(&fx).await;
    fx.assert_stored_exactly(&ids).await;
    assert_eq!(fx.metrics.events_written.get(), 120);
    assert_eq!(fx.metrics.events_spooled.get(), 0);
    let status = writer.status();
    assert_eq!(
        (status.queue_depth, status.spool_bytes, status.store_ok),
        (0, 0, true)
    );
    assert_eq!(sink.status(), status);
    let text = fx.metrics.render();
    assert!(
        text.contains("tollgate_usage_events_written_total 120"),
        "{text}"
    );

    writer.shutdown().await;
    assert!(fx.spool_files().is_empty(), "nothing was spooled");
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn a_full_batch_is_written_without_waiting_for_the_interval() {
    let fx = Fixture::new().await;
    let (writer, sink) = fx.start(fx.config(1000, 10, Duration::from_secs(3600)));
    let ids = record(&sink, 30);
    wait_stored(&fx, 30).await;
    assert_eq!(fx.store.batch_sizes(), vec![10, 10, 10]);

    // Five more do not make a batch: they wait for the (hour-long) interval...
    let more = record(&sink, 5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fx.store.count_usage().await.unwrap(), 30);
    assert_eq!(fx.metrics.queue_depth_now(), 5);
    // ...or for shutdown, which writes them.
    writer.shutdown().await;
    assert_eq!(fx.store.batch_sizes(), vec![10, 10, 10, 5]);
    fx.assert_stored_exactly(&[ids, more].concat()).await;
    assert_eq!(fx.metrics.queue_depth_now(), 0);
    fx.assert_nothing_lost();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_batch_is_written_while_the_one_before_is_still_in_the_store() {
    let fx = Fixture::new().await;
    fx.store.delay_ms.store(150, Ordering::SeqCst);
    let (writer, sink) = fx.start(fx.config(1000, 10, Duration::from_secs(3600)));
    let ids = record(&sink, 60);
    wait_stored(&fx, 60).await;
    // Two batches at a time, never more: the queue is full enough for six.
    assert_eq!(fx.store.most_writing.load(Ordering::SeqCst), 2);
    assert_eq!(fx.store.batch_sizes(), vec![10; 6]);
    wait_flushed(&fx).await;
    assert_eq!(fx.metrics.queue_depth_now(), 0);
    assert!(
        fx.metrics.oldest_unwritten_age_seconds() == 0.0,
        "nothing is left in memory"
    );
    writer.shutdown().await;
    fx.assert_stored_exactly(&ids).await;
    assert_eq!(fx.metrics.events_written.get(), 60);
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn a_partial_batch_is_written_after_the_interval() {
    let fx = Fixture::new().await;
    let interval = Duration::from_millis(250);
    let (writer, sink) = fx.start(fx.config(1000, 1000, interval));
    let started = Instant::now();
    let ids = record(&sink, 3);
    wait_stored(&fx, 3).await;
    let waited = started.elapsed();
    assert!(
        waited >= interval,
        "written after {waited:?}, before the {interval:?} interval"
    );
    assert!(
        waited < Duration::from_secs(5),
        "written only after {waited:?}"
    );
    wait_for("the first batch noted", || async {
        !fx.store.batch_sizes().is_empty()
    })
    .await;
    assert_eq!(fx.store.batch_sizes(), vec![3], "one transaction");

    // The interval counts from the first event of each batch.
    let again = Instant::now();
    let more = record(&sink, 2);
    wait_stored(&fx, 5).await;
    assert!(again.elapsed() >= interval);
    // The store notes a batch just after its commit: rows can be counted a moment before.
    wait_for("the second batch noted", || async {
        fx.store.batch_sizes().len() == 2
    })
    .await;
    assert_eq!(fx.store.batch_sizes(), vec![3, 2]);

    writer.shutdown().await;
    fx.assert_stored_exactly(&[ids, more].concat()).await;
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn a_full_queue_spills_to_the_spool_which_is_replayed() {
    let fx = Fixture::new().await;
    let (writer, sink) = fx.start(fx.config(4, 2, Duration::from_millis(20)));
    // The test runtime has one thread: the writer cannot run while this loop records, so the
    // queue takes exactly 4 and the spool the rest.
    let ids = record(&sink, 500);
    assert_eq!(fx.metrics.events_queued.get(), 4);
    assert_eq!(fx.metrics.events_spooled.get(), 496);
    assert_eq!(fx.metrics.queue_depth_now(), 4);
    let files = fx.spool_files();
    assert_eq!(files.len(), 1);
    let on_disk = std::fs::metadata(&files[0]).unwrap().len();
    assert_eq!(
        fx.metrics.spool_bytes_now(),
        i64::try_from(on_disk).unwrap()
    );
    assert_eq!(writer.status().spool_bytes, fx.metrics.spool_bytes_now());

    wait_flushed(&fx).await;
    fx.assert_stored_exactly(&ids).await;
    assert_eq!(fx.metrics.events_written.get(), 500);
    assert!(fx.spool_files().is_empty(), "replayed files are deleted");
    assert!(writer.status().store_ok);
    writer.shutdown().await;
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn a_store_outage_spools_and_replays_once_the_store_is_back() {
    let fx = Fixture::new().await;
    let (writer, sink) = fx.start(fx.config(1000, 20, Duration::from_millis(20)));
    let before = record(&sink, 10);
    wait_stored(&fx, 10).await;

    fx.store.set_down(true);
    let during = record(&sink, 50);
    wait_for("the outage to be noticed and spooled", || async {
        fx.metrics.events_spooled.get() == 50 && fx.metrics.queue_depth_now() == 0
    })
    .await;
    let status = writer.status();
    assert!(!status.store_ok, "status shows the store down");
    assert!(status.spool_bytes > 0);
    // While the store is down, new batches go straight to the spool.
    let more = record(&sink, 30);
    wait_for("80 spooled events", || async {
        fx.metrics.events_spooled.get() == 80
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fx.store.count_usage().await.unwrap(),
        10,
        "nothing reached the store while it was down"
    );

    fx.store.set_down(false);
    wait_flushed(&fx).await;
    wait_for("the store marked up", || async { writer.status().store_ok }).await;
    let stored: Vec<Uuid> = [&before[..], &during[..], &more[..]].concat();
    fx.assert_stored_exactly(&stored).await;
    assert_eq!(fx.metrics.events_written.get(), 90);
    assert!(fx.spool_files().is_empty());

    // After the outage, batches go to the store again.
    let after = record(&sink, 5);
    wait_stored(&fx, 95).await;
    assert_eq!(fx.metrics.events_spooled.get(), 80);
    writer.shutdown().await;
    fx.assert_stored_exactly(&[before, during, more, after].concat())
        .await;
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_replayed_but_stored_once() {
    let fx = Fixture::new().await;
    let (writer, sink) = fx.start(fx.config(1000, 25, Duration::from_millis(20)));
    fx.store.fail_after_commit.store(true, Ordering::SeqCst);
    let ids = record(&sink, 25);
    wait_for("the batch to be spooled", || async {
        fx.metrics.events_spooled.get() == 25
    })
    .await;
    assert_eq!(
        fx.store.count_usage().await.unwrap(),
        25,
        "the batch did commit"
    );

    fx.store.fail_after_commit.store(false, Ordering::SeqCst);
    wait_flushed(&fx).await;
    wait_for("the store marked up", || async { writer.status().store_ok }).await;
    // The replay wrote the same 25 events again (at least once); the store kept one of each.
    assert!(fx.store.committed_order().len() >= 50);
    fx.assert_stored_exactly(&ids).await;
    writer.shutdown().await;
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn start_replays_an_earlier_runs_spool_oldest_first_skipping_a_torn_line() {
    let fx = Fixture::new().await;
    let older: Vec<UsageEvent> = (0..10).map(event).collect();
    let newer: Vec<UsageEvent> = (10..20).map(event).collect();
    // The first five were stored before the crash that kept their file: replaying them is harmless.
    fx.store.inner.write_usage(&older[..5]).await.unwrap();

    let dir = fx.spool_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let ndjson = |events: &[UsageEvent]| -> String {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect()
    };
    // Names sort by number, not text: 900 < 1000.
    std::fs::write(dir.join("usage-900-1.ndjson"), ndjson(&older)).unwrap();
    let torn = serde_json::to_string(&event(99)).unwrap();
    let newer_text = ndjson(&newer) + &torn[..torn.len() / 2];
    std::fs::write(dir.join("usage-1000-1.ndjson"), newer_text).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a spool file").unwrap();

    let (writer, _sink) = fx.start(fx.config(100, 4, Duration::from_millis(20)));
    wait_flushed(&fx).await;
    let all: Vec<Uuid> = older.iter().chain(&newer).map(|e| e.event_id).collect();
    fx.assert_stored_exactly(&all).await;
    assert_eq!(
        fx.metrics.events_written.get(),
        15,
        "five events were already stored"
    );
    assert_eq!(
        fx.store.committed_order(),
        all,
        "oldest file first, in file order"
    );
    assert!(
        fx.store.batch_sizes().iter().all(|n| *n <= 4),
        "replayed in batches of batch_size"
    );
    assert!(fx.spool_files().is_empty());
    assert!(dir.join("notes.txt").exists(), "other files are left alone");
    writer.shutdown().await;
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn shutdown_drains_the_queue_and_later_events_wait_in_the_spool() {
    let fx = Fixture::new().await;
    let (writer, sink) = fx.start(fx.config(10_000, 100, Duration::from_secs(3600)));
    let ids = record(&sink, 1000);
    writer.shutdown().await;
    fx.assert_stored_exactly(&ids).await;
    assert_eq!(fx.metrics.queue_depth_now(), 0);
    assert_eq!(fx.metrics.events_spooled.get(), 0);

    // The sink outlives the writer: what it records now goes to the spool...
    let late = record(&sink, 3);
    assert_eq!(fx.metrics.events_spooled.get(), 3);
    assert_eq!(fx.spool_files().len(), 1);
    // ...and the next start replays it.
    let (writer, _sink) = fx.start(fx.config(10_000, 100, Duration::from_secs(3600)));
    wait_flushed(&fx).await;
    fx.assert_stored_exactly(&[ids, late].concat()).await;
    writer.shutdown().await;
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn shutdown_with_the_store_down_spools_the_queue_for_the_next_start() {
    let fx = Fixture::new().await;
    fx.store.set_down(true);
    let (writer, sink) = fx.start(fx.config(10_000, 50, Duration::from_secs(3600)));
    let ids = record(&sink, 120);
    writer.shutdown().await;
    assert_eq!(fx.store.count_usage().await.unwrap(), 0);
    assert_eq!(fx.metrics.events_spooled.get(), 120);
    assert_eq!(fx.metrics.queue_depth_now(), 0);
    assert!(fx.metrics.spool_bytes_now() > 0);

    fx.store.set_down(false);
    let metrics = Metrics::new();
    let (writer, _sink) = UsageWriter::start(
        fx.store.clone(),
        fx.config(100, 50, Duration::from_millis(20)),
        metrics.clone(),
    )
    .unwrap();
    assert!(
        metrics.spool_bytes_now() > 0,
        "a new start counts the spool it finds"
    );
    wait_for("the replay at start", || async {
        metrics.spool_bytes_now() == 0
    })
    .await;
    fx.assert_stored_exactly(&ids).await;
    assert_eq!(metrics.events_written.get(), 120);
    writer.shutdown().await;
    fx.assert_nothing_lost();
    assert_eq!(metrics.dropped_now(), 0);
}

#[tokio::test]
async fn an_event_the_store_refuses_is_set_aside_without_holding_up_the_others() {
    let fx = Fixture::new().await;
    let (writer, sink) = fx.start(fx.config(1000, 16, Duration::from_secs(3600)));
    let events: Vec<UsageEvent> = (0..16).map(event).collect();
    let bad = events[5].event_id;
    fx.store.refuse.lock().unwrap().insert(bad);
    for e in events.clone() {
        sink.record(e);
    }
    wait_stored(&fx, 15).await;
    let good: Vec<Uuid> = events
        .iter()
        .map(|e| e.event_id)
        .filter(|id| *id != bad)
        .collect();
    fx.assert_stored_exactly(&good).await;
    assert!(
        writer.status().store_ok,
        "one bad event does not take the store down"
    );
    // This is the one test where an event is not stored: it is counted as dropped and kept aside.
    assert_eq!(fx.metrics.dropped_now(), 1);
    let aside = std::fs::read_to_string(fx.spool_dir().join("rejected-usage.ndjson")).unwrap();
    assert!(aside.contains(&bad.to_string()));
    assert_eq!(aside.lines().count(), 1);

    // Later events still reach the store.
    let more = record(&sink, 16);
    wait_stored(&fx, 31).await;
    writer.shutdown().await;
    fx.assert_stored_exactly(&[good, more].concat()).await;
    assert_eq!(fx.metrics.dropped_now(), 1);
}

/// Every event id written in the spool files of `dir`.
fn ids_in_spool(dir: &Path) -> HashSet<Uuid> {
    spool_files(dir)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str::<UsageEvent>(l).ok())
                .map(|e| e.event_id)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn write_spool_file(dir: &Path, name: &str, events: &[UsageEvent]) {
    std::fs::create_dir_all(dir).unwrap();
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test]
async fn events_recorded_during_a_replay_are_on_disk_and_a_kill_mid_replay_loses_none() {
    let fx = Fixture::new().await;
    // An earlier run left 300 events; a slow store makes their replay take about 1.5 s.
    let older: Vec<UsageEvent> = (0..300).map(event).collect();
    write_spool_file(&fx.spool_dir(), "usage-1000-1.ndjson", &older);
    fx.store.delay_ms.store(50, Ordering::SeqCst);
    let (writer, sink) = fx.start(fx.config(10_000, 10, Duration::from_millis(20)));
    wait_for("the replay to start", || async {
        !fx.store.batch_sizes().is_empty()
    })
    .await;

    // Recorded while the replay runs: straight to the spool, not into memory behind it.
    let during = record(&sink, 100);
    assert_eq!(
        fx.metrics.queue_depth_now(),
        0,
        "no event waits in memory during a replay"
    );
    let on_disk = ids_in_spool(&fx.spool_dir());
    assert!(
        during.iter().all(|id| on_disk.contains(id)),
        "every event recorded during the replay is in a spool file"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stored_before_kill = fx.store.count_usage().await.unwrap();
    assert!(
        stored_before_kill < 300,
        "the kill comes mid-replay ({stored_before_kill} of 300 stored)"
    );

    // kill -9: whatever the writer held in memory is gone.
    writer.kill();
    drop(sink);
    tokio::task::yield_now().await;

    fx.store.delay_ms.store(0, Ordering::SeqCst);
    let metrics = Metrics::new();
    let (writer, _sink) = UsageWriter::start(
        fx.store.clone(),
        fx.config(10_000, 50, Duration::from_millis(20)),
        metrics.clone(),
    )
    .unwrap();
    wait_for("the replay after the kill", || async {
        metrics.spool_bytes_now() == 0 && metrics.queue_depth_now() == 0
    })
    .await;
    let all: Vec<Uuid> = older.iter().map(|e| e.event_id).chain(during).collect();
    // Events of the file the kill interrupted are written again: the store keeps one of each.
    fx.assert_stored_exactly(&all).await;
    writer.shutdown().await;
    fx.assert_nothing_lost();
    assert_eq!(metrics.dropped_now(), 0);
}

#[tokio::test]
async fn a_full_disk_degrades_the_writer_which_recovers_without_a_restart() {
    let fx = Fixture::new().await;
    let (writer, sink) = fx.start(fx.config(10_000, 50, Duration::from_millis(20)));
    let first = record(&sink, 10);
    wait_stored(&fx, 10).await;

    // Room for a few batches only, then `database or disk is full`.
    fx.store.inner.limit_writer_pages(Some(8)).await.unwrap();
    let mut ids = first;
    let deadline = Instant::now() + Duration::from_secs(15);
    while fx.metrics.store_write_ok_now() {
        assert!(Instant::now() < deadline, "the store never filled up");
        ids.extend(record(&sink, 50));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Writes keep failing while the disk is full, and say so.
    ids.extend(record(&sink, 50));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !writer.status().store_ok,
        "the writer reports the store down"
    );
    assert!(fx.metrics.store_write_failures.get() >= 1);
    assert!(
        fx.metrics.spool_bytes_now() > 0,
        "unstored events wait in the spool"
    );
    assert!(fx.metrics.oldest_unwritten_age_seconds() > 0.0);
    let text = fx.metrics.render();
    assert!(text.contains("tollgate_usage_store_write_ok 0"), "{text}");
    assert!(
        !text.contains("tollgate_usage_oldest_unwritten_age_seconds 0.0\n"),
        "{text}"
    );
    assert_eq!(fx.metrics.dropped_now(), 0, "nothing is lost, only late");

    // Space comes back: the same writer, without a restart, stores everything once.
    fx.store.inner.limit_writer_pages(None).await.unwrap();
    wait_for("the writer to recover", || async {
        writer.status().store_ok
            && fx.metrics.spool_bytes_now() == 0
            && fx.metrics.queue_depth_now() == 0
    })
    .await;
    let after = record(&sink, 20);
    ids.extend(after);
    wait_flushed(&fx).await;
    wait_stored(&fx, i64::try_from(ids.len()).unwrap()).await;
    fx.assert_stored_exactly(&ids).await;
    assert!(fx.metrics.store_write_ok_now());
    assert!(
        fx.metrics
            .render()
            .contains("tollgate_usage_store_write_ok 1")
    );
    writer.shutdown().await;
    fx.assert_nothing_lost();
}

#[tokio::test]
async fn spool_durability_acks_after_a_synced_append_and_the_writer_stores_from_the_spool() {
    let fx = Fixture::new().await;
    let mut config = fx.config(10_000, 50, Duration::from_millis(20));
    config.durability = Durability::Spool;
    let (writer, sink) = fx.start(config);
    let events: Vec<UsageEvent> = (0..40).map(event).collect();
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let acks: Vec<_> = events.into_iter().map(|e| sink.record_acked(e)).collect();
    assert!(acks.iter().all(tollgate_gateway::writer::Ack::is_pending));
    futures_util::future::join_all(acks).await;
    // Acknowledged: on disk, whatever happens to the process now.
    let on_disk = ids_in_spool(&fx.spool_dir());
    let in_store: HashSet<Uuid> = fx
        .store
        .recent_usage(i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert!(
        ids.iter()
            .all(|id| on_disk.contains(id) || in_store.contains(id)),
        "every acknowledged event is in the spool (or already stored)"
    );
    assert_eq!(
        fx.metrics.events_queued.get(),
        0,
        "nothing went through memory"
    );
    wait_flushed(&fx).await;
    fx.assert_stored_exactly(&ids).await;
    writer.kill();
    fx.assert_nothing_lost();
}
