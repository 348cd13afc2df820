//! Limits and budgets: who may set, change, remove and read one; their validation (shared with
//! `tollgate-limits`' own), the cap of a key's limit by its team's, the audit entry of each
//! change, and the migration of the old quota settings into budgets.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tollgate_core::Role;
use tollgate_core::time::{HOUR_MS, now_ms};
use tollgate_limits::{
    BudgetSeed, Enforcement, FieldError, Limit, LimitKind, Limiter, Period, Scope, SeedError,
    default_alert_at,
};
use tollgate_store::{
    AggregateOrder, EventCursor, EventFilter, Grouping, LimitOwner, LimitRecord, RollupFilter,
    Store,
};

use super::{Actor, RuleError, RuleResult, Rules};
use crate::audit::Change;

/// The label of the budgets behind `/api/v1/quotas`.
pub const QUOTA_LABEL: &str = "quota";

/// A limit to create.
#[derive(Debug, Clone)]
pub struct LimitDraft {
    /// What it applies to.
    pub scope: Scope,
    /// What it counts and its ceiling.
    pub kind: LimitKind,
    /// Hard (default) or soft.
    pub enforcement: Option<Enforcement>,
    /// Alert thresholds in percent; default 80 and 100.
    pub alert_at: Option<Vec<u16>>,
    /// Whether token-counter readings count (budgets only).
    pub include_reported: Option<bool>,
}

/// A change to a limit; `None` fields stay as they are.
#[derive(Debug, Clone)]
pub struct LimitChange {
    /// The new kind and ceiling.
    pub kind: LimitKind,
    /// New enforcement.
    pub enforcement: Option<Enforcement>,
    /// New alert thresholds.
    pub alert_at: Option<Vec<u16>>,
    /// Whether readings count.
    pub include_reported: Option<bool>,
}

/// A stored limit with what the store keeps about it.
#[derive(Debug, Clone)]
pub struct LimitEntry {
    /// The limit.
    pub limit: Limit,
    /// Its marker, e.g. `quota`.
    pub label: Option<String>,
    /// Who made it.
    pub created_by: String,
    /// When, epoch ms.
    pub created_at_ms: i64,
}

/// The store's owner for a scope.
pub fn owner_of(scope: Scope) -> LimitOwner {
    match scope {
        Scope::Instance => LimitOwner::Instance,
        Scope::Team(id) => LimitOwner::Team(id),
        Scope::Key(id) => LimitOwner::Key(id),
        Scope::Route(id) => LimitOwner::Route(id),
    }
}

/// The scope of a store owner.
pub fn scope_of(owner: LimitOwner) -> Scope {
    match owner {
        LimitOwner::Instance => Scope::Instance,
        LimitOwner::Team(id) => Scope::Team(id),
        LimitOwner::Key(id) => Scope::Key(id),
        LimitOwner::Route(id) => Scope::Route(id),
    }
}

/// The field names `tollgate-limits` reports, as the API spells them.
fn static_field(field: &str) -> &'static str {
    match field {
        "kind.max" => "kind.max",
        "kind.max_micro_usd" => "kind.max_micro_usd",
        "kind.per" => "kind.per",
        "kind.period" => "kind.period",
        "scope.id" => "scope.id",
        "alert_at" => "alert_at",
        "include_reported" => "include_reported",
        "enforcement" => "enforcement",
        "models" => "models",
        "id" => "id",
        _ => "kind",
    }
}

/// A `tollgate-limits` field error as a rule error naming the same field.
pub fn field_error(e: FieldError) -> RuleError {
    RuleError::invalid(static_field(&e.field), e.message)
}

/// Reads a stored limit; an unreadable one is reported, not fatal to a listing.
pub fn entry_of(record: &LimitRecord) -> Result<LimitEntry, FieldError> {
    let (limit, label) = Limit::from_record(record.id, scope_of(record.owner), &record.spec)?;
    Ok(LimitEntry {
        limit,
        label,
        created_by: record.created_by.clone(),
        created_at_ms: record.created_at_ms,
    })
}

/// Every readable stored limit, by id; unreadable rows are logged and left out.
pub async fn all_entries(store: &dyn Store) -> RuleResult<Vec<LimitEntry>> {
    let mut out = Vec::new();
    for record in store.list_limits().await? {
        match entry_of(&record) {
            Ok(entry) => out.push(entry),
            Err(e) => {
                tracing::warn!(limit = record.id, error = %e, "a stored limit is not readable")
            }
        }
    }
    Ok(out)
}

/// Gives the active limits to `limiter` at once (the store revision carries them to other
/// instances).
pub async fn reload(store: &dyn Store, limiter: &Limiter) -> RuleResult<()> {
    let limits = all_entries(store)
        .await?
        .into_iter()
        .map(|e| e.limit)
        .collect();
    limiter.set_limits(limits).map_err(field_error)
}

/// The team a scope belongs to (`None` for the instance and shared routes); "not found" when the
/// team, key or route does not exist.
async fn team_of(store: &dyn Store, scope: Scope) -> RuleResult<Option<i64>> {
    match scope {
        Scope::Instance => Ok(None),
        Scope::Team(id) => store
            .team_by_id(id)
            .await?
            .map(|t| Some(t.id))
            .ok_or_else(|| RuleError::NotFound(format!("team {id} does not exist"))),
        Scope::Key(id) => store
            .key_by_id(id)
            .await?
            .map(|k| Some(k.team_id))
            .ok_or_else(|| RuleError::NotFound(format!("key {id} does not exist"))),
        Scope::Route(id) => store
            .route_by_id(id)
            .await?
            .map(|r| r.team_id)
            .ok_or_else(|| RuleError::NotFound(format!("route {id} does not exist"))),
    }
}

/// Whether the actor may read limits of `scope` (whose team is `team`): instance limits and
/// shared routes' limits are everyone's; the rest only their team's members'.
fn may_read(actor: &Actor<'_>, team: Option<i64>) -> bool {
    team.is_none_or(|t| actor.role_in(t).is_some())
}

/// Requires the right to change limits of `scope`: instance admins for the instance and routes,
/// team admins and owners for their team and its keys. A scope the actor cannot see is "not found".
async fn require_manage(store: &dyn Store, actor: &Actor<'_>, scope: Scope) -> RuleResult<()> {
    let team = team_of(store, scope).await?;
    if !may_read(actor, team) {
        return Err(RuleError::NotFound(format!("{scope} does not exist")));
    }
    match (scope, team) {
        (Scope::Instance | Scope::Route(_), _) => actor.require_admin(),
        (Scope::Team(_) | Scope::Key(_), Some(team)) => {
            actor.require(team, Role::Admin).map(|_| ())
        }
        (_, None) => actor.require_admin(),
    }
}

/// Whether two kinds count the same thing over the same window or period.
fn same_measure(a: &LimitKind, b: &LimitKind) -> bool {
    match (a, b) {
        (LimitKind::Requests { per: x, .. }, LimitKind::Requests { per: y, .. }) => x == y,
        (LimitKind::TokensPerMinute { .. }, LimitKind::TokensPerMinute { .. })
        | (LimitKind::Concurrency { .. }, LimitKind::Concurrency { .. }) => true,
        (LimitKind::TokenBudget { period: x, .. }, LimitKind::TokenBudget { period: y, .. })
        | (LimitKind::CostBudget { period: x, .. }, LimitKind::CostBudget { period: y, .. }) => {
            x == y
        }
        _ => false,
    }
}

/// The field of a kind's ceiling.
fn max_field(kind: &LimitKind) -> &'static str {
    match kind {
        LimitKind::CostBudget { .. } => "kind.max_micro_usd",
        _ => "kind.max",
    }
}

/// Refuses a key limit above its team's own limit of the same measure.
async fn check_team_cap(store: &dyn Store, scope: Scope, kind: &LimitKind) -> RuleResult<()> {
    let Scope::Key(key) = scope else {
        return Ok(());
    };
    let Some(team) = team_of(store, scope).await? else {
        return Ok(());
    };
    let cap = all_entries(store)
        .await?
        .into_iter()
        .filter(|e| e.limit.scope == Scope::Team(team) && same_measure(&e.limit.kind, kind))
        .map(|e| e.limit.kind.max())
        .min();
    match cap {
        Some(cap) if kind.max() > cap => Err(RuleError::Forbidden(format!(
            "{}: key {key}'s limit of {} is above its team's own {} limit of {cap}",
            max_field(kind),
            kind.max(),
            kind.name()
        ))),
        _ => Ok(()),
    }
}

/// A validated limit from its parts (the id only for validation when not yet stored).
fn validated(
    id: i64,
    scope: Scope,
    kind: LimitKind,
    enforcement: Enforcement,
    alert_at: Vec<u16>,
    include_reported: bool,
) -> RuleResult<Limit> {
    Limit {
        id,
        scope,
        kind,
        enforcement,
        alert_at,
        include_reported,
    }
    .validated()
    .map_err(field_error)
}

/// One line describing a limit, for the audit log.
pub fn describe(limit: &Limit) -> String {
    let what = match limit.kind {
        LimitKind::Requests { per, max } => format!("{max} requests per {per:?}"),
        LimitKind::TokensPerMinute { max } => format!("{max} tokens per minute"),
        LimitKind::Concurrency { max } => format!("{max} calls in flight"),
        LimitKind::TokenBudget { max, period } => format!("{max} tokens per {period:?}"),
        LimitKind::CostBudget {
            max_micro_usd,
            period,
        } => format!("{max_micro_usd} micro-USD per {period:?}"),
    };
    let soft = if limit.is_hard() { "" } else { " (soft)" };
    format!("{}{soft} on {}", what.to_lowercase(), limit.scope)
}

fn audit_team(scope: Scope, team: Option<i64>) -> Option<i64> {
    match scope {
        Scope::Instance => None,
        _ => team,
    }
}

/// Checks a limit to create without writing anything: its fields, the actor's right over its
/// scope, and the cap of a key's limit by its team's. Returns the limit as it would be stored.
pub async fn check_draft(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    draft: &LimitDraft,
) -> RuleResult<Limit> {
    let store = rules.store;
    let limit = validated(
        1,
        draft.scope,
        draft.kind,
        draft.enforcement.unwrap_or_default(),
        draft.alert_at.clone().unwrap_or_else(default_alert_at),
        draft.include_reported.unwrap_or(false),
    )?;
    require_manage(store, actor, draft.scope).await?;
    check_team_cap(store, draft.scope, &limit.kind).await?;
    Ok(limit)
}

/// Creates a limit, audited.
pub async fn create(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    draft: LimitDraft,
    label: Option<&str>,
) -> RuleResult<LimitEntry> {
    let store = rules.store;
    let limit = check_draft(rules, actor, &draft).await?;
    let record = store
        .create_limit(
            owner_of(draft.scope),
            &limit.spec_json(label),
            &actor.creator(),
        )
        .await?;
    let entry = entry_of(&record).map_err(field_error)?;
    let team = team_of(store, draft.scope).await.ok().flatten();
    let change = Change::new("limit.create", "limit", record.id)
        .team(audit_team(draft.scope, team))
        .summary(format!("limit set: {}", describe(&entry.limit)));
    actor.audit(store, change).await;
    Ok(entry)
}

/// A stored limit the actor may read; otherwise "not found".
pub async fn visible(store: &dyn Store, actor: &Actor<'_>, id: i64) -> RuleResult<LimitEntry> {
    let not_found = || RuleError::NotFound(format!("limit {id} does not exist"));
    let record = store.get_limit(id).await?.ok_or_else(not_found)?;
    let entry = entry_of(&record).map_err(field_error)?;
    let team = team_of(store, entry.limit.scope).await?;
    if may_read(actor, team) {
        Ok(entry)
    } else {
        Err(not_found())
    }
}

/// Changes a limit's kind, enforcement, thresholds or readings, audited.
pub async fn update(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
    change: LimitChange,
) -> RuleResult<LimitEntry> {
    let store = rules.store;
    let current = visible(store, actor, id).await?;
    let old = &current.limit;
    let limit = validated(
        id,
        old.scope,
        change.kind,
        change.enforcement.unwrap_or(old.enforcement),
        change.alert_at.unwrap_or_else(|| old.alert_at.clone()),
        change.include_reported.unwrap_or(old.include_reported),
    )?;
    require_manage(store, actor, old.scope).await?;
    check_team_cap(store, old.scope, &limit.kind).await?;
    let record = store
        .update_limit(id, &limit.spec_json(current.label.as_deref()))
        .await?;
    let entry = entry_of(&record).map_err(field_error)?;
    let team = team_of(store, old.scope).await.ok().flatten();
    let audit = Change::new("limit.update", "limit", id)
        .team(audit_team(old.scope, team))
        .summary(format!(
            "limit changed from {} to {}",
            describe(old),
            describe(&entry.limit)
        ));
    actor.audit(store, audit).await;
    Ok(entry)
}

/// Removes a limit, audited.
pub async fn delete(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<LimitEntry> {
    let store = rules.store;
    let current = visible(store, actor, id).await?;
    require_manage(store, actor, current.limit.scope).await?;
    store.delete_limit(id).await?;
    let team = team_of(store, current.limit.scope).await.ok().flatten();
    let change = Change::new("limit.delete", "limit", id)
        .team(audit_team(current.limit.scope, team))
        .summary(format!("limit removed: {}", describe(&current.limit)));
    actor.audit(store, change).await;
    Ok(current)
}

/// Which limits a listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitFilter {
    /// Only this kind of scope: `instance`, `team`, `key`, `route`.
    pub scope_kind: Option<&'static str>,
    /// Only this team, key or route id.
    pub id: Option<i64>,
}

/// Parses a listing's `scope` filter, naming the field.
pub fn scope_kind(text: &str) -> RuleResult<&'static str> {
    match text.trim().to_ascii_lowercase().as_str() {
        "instance" => Ok("instance"),
        "team" => Ok("team"),
        "key" => Ok("key"),
        "route" => Ok("route"),
        other => Err(RuleError::invalid(
            "scope",
            format!("`{other}` is not a scope; expected instance, team, key or route"),
        )),
    }
}

/// The limits the actor may read, by id.
pub async fn list(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    filter: LimitFilter,
) -> RuleResult<Vec<LimitEntry>> {
    let store = rules.store;
    let key_teams: HashMap<i64, i64> = store
        .list_keys(None)
        .await?
        .iter()
        .map(|k| (k.id, k.team_id))
        .collect();
    let route_teams: HashMap<i64, Option<i64>> = store
        .list_routes()
        .await?
        .iter()
        .map(|r| (r.id, r.team_id))
        .collect();
    let mut out = Vec::new();
    for entry in all_entries(store).await? {
        let scope = entry.limit.scope;
        if filter.scope_kind.is_some_and(|k| k != scope.kind_name()) {
            continue;
        }
        let id = match scope {
            Scope::Instance => None,
            Scope::Team(id) | Scope::Key(id) | Scope::Route(id) => Some(id),
        };
        if filter.id.is_some() && filter.id != id {
            continue;
        }
        let team = match scope {
            Scope::Instance => None,
            Scope::Team(t) => Some(t),
            Scope::Key(k) => match key_teams.get(&k) {
                Some(t) => Some(*t),
                None => continue,
            },
            Scope::Route(r) => match route_teams.get(&r) {
                Some(t) => *t,
                None => continue,
            },
        };
        if may_read(actor, team) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Names of the things limits apply to: `instance`, a team's, key's or route's name.
pub async fn scope_names(store: &dyn Store) -> RuleResult<HashMap<Scope, String>> {
    let mut names = HashMap::new();
    names.insert(Scope::Instance, "instance".to_owned());
    for t in store.list_teams().await? {
        names.insert(Scope::Team(t.id), t.name);
    }
    for k in store.list_keys(None).await? {
        names.insert(Scope::Key(k.id), k.name);
    }
    for r in store.list_routes().await? {
        names.insert(Scope::Route(r.id), r.name);
    }
    Ok(names)
}

/// A key's model allow-list, checked: `None` clears it; the patterns are stored comma-separated.
pub fn check_models(models: Option<&[String]>) -> RuleResult<Option<String>> {
    let Some(models) = models else {
        return Ok(None);
    };
    if models.iter().any(|m| m.contains(',')) {
        return Err(RuleError::invalid(
            "models",
            "a pattern may not contain a comma",
        ));
    }
    let list = tollgate_limits::ModelAllowList::new(models).map_err(field_error)?;
    Ok(Some(list.patterns().join(",")))
}

/// Sets or clears a key's model allow-list (whoever may change the key), audited.
pub async fn set_key_models(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    key_id: i64,
    models: Option<&[String]>,
) -> RuleResult<Option<Vec<String>>> {
    let store = rules.store;
    let patterns = check_models(models)?;
    let key = super::keys::managed(store, actor, key_id).await?;
    store.set_key_models(key_id, patterns.as_deref()).await?;
    let change = Change::new("key.update", "key", key_id)
        .team(Some(key.team_id))
        .summary(match &patterns {
            Some(p) => format!("key `{}` limited to models {p}", key.name),
            None => format!("key `{}` may call every model", key.name),
        });
    actor.audit(store, change).await;
    Ok(patterns.map(|p| split_models(&p)))
}

/// Stored patterns as a list.
pub fn split_models(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every key's model allow-list, by key id.
pub async fn key_models(store: &dyn Store) -> RuleResult<HashMap<i64, Vec<String>>> {
    Ok(store
        .key_models()
        .await?
        .into_iter()
        .map(|(id, p)| (id, split_models(&p)))
        .collect())
}

/// The setting that held the instance's token quota before quotas became budgets.
pub const INSTANCE_QUOTA_SETTING: &str = "quota.instance";

/// The setting that held a team's token quota before quotas became budgets.
pub fn team_quota_setting(team: i64) -> String {
    format!("quota.team.{team}")
}

/// The quota budget of the instance or a team: its limit, if one is set.
pub async fn quota_limit(store: &dyn Store, team: Option<i64>) -> RuleResult<Option<LimitEntry>> {
    let scope = team.map_or(Scope::Instance, Scope::Team);
    Ok(all_entries(store).await?.into_iter().find(|e| {
        e.limit.scope == scope
            && e.label.as_deref() == Some(QUOTA_LABEL)
            && matches!(e.limit.kind, LimitKind::TokenBudget { .. })
    }))
}

/// Sets (`Some`), changes or removes (`None`) the quota budget of the instance or a team: a hard
/// token budget per month or in total, labelled as the quota. Instance admins only; audited.
pub async fn set_quota(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    team: Option<i64>,
    quota: Option<(u64, Period)>,
) -> RuleResult<Option<LimitEntry>> {
    let store = rules.store;
    actor.require_admin()?;
    let scope = team.map_or(Scope::Instance, Scope::Team);
    if let Some(t) = team {
        team_of(store, Scope::Team(t)).await?;
    }
    let current = quota_limit(store, team).await?;
    let Some((tokens, period)) = quota else {
        if let Some(entry) = current {
            delete(rules, actor, entry.limit.id).await?;
        }
        return Ok(None);
    };
    let kind = LimitKind::TokenBudget {
        max: tokens,
        period,
    };
    let entry = match current {
        Some(entry) => {
            let change = LimitChange {
                kind,
                enforcement: Some(Enforcement::Hard),
                alert_at: None,
                include_reported: None,
            };
            update(rules, actor, entry.limit.id, change).await?
        }
        None => {
            let draft = LimitDraft {
                scope,
                kind,
                enforcement: Some(Enforcement::Hard),
                alert_at: None,
                include_reported: None,
            };
            create(rules, actor, draft, Some(QUOTA_LABEL)).await?
        }
    };
    Ok(Some(entry))
}

/// How many old quota settings became budgets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QuotasMigrated {
    /// Settings turned into budgets.
    pub budgets: usize,
    /// Settings that held no quota (removed without a budget).
    pub empty: usize,
}

#[derive(serde::Deserialize)]
struct OldQuota {
    tokens: Option<i64>,
    #[serde(default)]
    period: Option<String>,
}

/// Turns the quota settings of earlier versions (`quota.instance`, `quota.team.N`) into quota
/// budgets and deletes them. Idempotent: a setting already migrated is gone; a quota budget that
/// already exists is kept as it is.
pub async fn migrate_quota_settings(store: &dyn Store, actor: &str) -> RuleResult<QuotasMigrated> {
    let mut done = QuotasMigrated::default();
    let mut names = vec![(None, INSTANCE_QUOTA_SETTING.to_owned())];
    for team in store.list_teams().await? {
        names.push((Some(team.id), team_quota_setting(team.id)));
    }
    for (team, name) in names {
        let Some(text) = store.setting(&name).await? else {
            continue;
        };
        let old: Option<OldQuota> = serde_json::from_str(&text).ok();
        let quota = old.and_then(|q| {
            let tokens = u64::try_from(q.tokens?).ok().filter(|t| *t > 0)?;
            let period = match q.period.as_deref() {
                Some("total") => Period::Total,
                _ => Period::Month,
            };
            Some((tokens, period))
        });
        if let Some((tokens, period)) = quota
            && quota_limit(store, team).await?.is_none()
        {
            let scope = team.map_or(Scope::Instance, Scope::Team);
            let limit = validated(
                1,
                scope,
                LimitKind::TokenBudget {
                    max: tokens,
                    period,
                },
                Enforcement::Hard,
                default_alert_at(),
                false,
            )?;
            store
                .create_limit(owner_of(scope), &limit.spec_json(Some(QUOTA_LABEL)), actor)
                .await?;
            done.budgets += 1;
        } else {
            done.empty += 1;
        }
        store.delete_setting(&name).await?;
    }
    Ok(done)
}

/// Budget use read from the store's hourly roll-ups and the raw events of a partial first hour
/// (and, for budgets that count them, the token-counter readings): what a budget has used since
/// the start of its period.
#[derive(Clone)]
pub struct StoreSeed {
    store: Arc<dyn Store>,
}

impl StoreSeed {
    /// A seed over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl std::fmt::Debug for StoreSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSeed").finish_non_exhaustive()
    }
}

/// Calls' tokens and cost (USD) in `scope` from `since_ms` on, exactly: the whole hours from the
/// store's hourly roll-ups, and the part of an hour before the first whole one (a period that
/// starts at :30 in a zone like +05:30, or at any moment) summed from the raw events. Token
/// -counter readings are not included.
pub async fn calls_used_since(
    store: &dyn Store,
    scope: Scope,
    since_ms: i64,
) -> RuleResult<(i64, f64)> {
    let now = now_ms();
    let first_hour = since_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let whole_from = if first_hour == since_ms {
        since_ms
    } else {
        first_hour + HOUR_MS
    };
    let mut filter = RollupFilter {
        from_ms: whole_from,
        to_ms: now + HOUR_MS,
        ..RollupFilter::default()
    };
    let mut events = EventFilter {
        from_ms: Some(since_ms),
        to_ms: Some(whole_from),
        ..EventFilter::default()
    };
    match scope {
        Scope::Instance => {}
        Scope::Team(t) => {
            filter.team_ids = Some(vec![t]);
            events.team_ids = Some(vec![t]);
        }
        Scope::Key(k) => {
            filter.key_id = Some(k);
            events.key_id = Some(k);
        }
        Scope::Route(r) => {
            filter.route_id = Some(r);
            events.route_id = Some(r);
        }
    }
    let totals = store
        .aggregate_usage(&filter, Grouping::Total, AggregateOrder::Bucket, 1)
        .await?;
    let (mut tokens, mut cost) = totals
        .first()
        .map_or((0, 0.0), |t| (t.total_tokens, t.cost_usd));
    if whole_from > since_ms && since_ms <= now {
        let mut after = None;
        loop {
            let page = store.search_usage(&events, after, EDGE_PAGE).await?;
            for e in &page {
                tokens = tokens.saturating_add(e.event.tokens.total);
                // An unpriced call adds nothing to a cost budget, as at admission.
                cost += e.event.cost_usd.unwrap_or(0.0);
            }
            match page.last() {
                Some(last) if i64::try_from(page.len()).unwrap_or(0) == EDGE_PAGE => {
                    after = Some(EventCursor {
                        ts_ms: last.event.ts_ms,
                        id: last.id,
                    });
                }
                _ => break,
            }
        }
    }
    Ok((tokens, cost))
}

/// Raw events read per page when summing the part of an hour a period starts in.
const EDGE_PAGE: i64 = 1_000;

/// Tokens and micro-USD used in `scope` since `since_ms` (see [`calls_used_since`]); readings
/// count only instance-wide, where they are kept.
pub async fn used_since(
    store: &dyn Store,
    scope: Scope,
    since_ms: i64,
    include_reported: bool,
) -> RuleResult<(i64, i64)> {
    let now = now_ms();
    let (mut tokens, cost_usd) = calls_used_since(store, scope, since_ms).await?;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a cost in micro-USD far below 2^63"
    )]
    let cost = (cost_usd * 1_000_000.0).round() as i64;
    if include_reported && scope == Scope::Instance {
        tokens += store
            .counter_daily(None, since_ms, now + 1)
            .await?
            .iter()
            .map(|(_, t, _)| t)
            .sum::<i64>();
    }
    Ok((tokens, cost))
}

#[async_trait]
impl BudgetSeed for StoreSeed {
    async fn used(
        &self,
        scope: Scope,
        since_ms: i64,
        include_reported: bool,
    ) -> Result<(i64, i64), SeedError> {
        used_since(self.store.as_ref(), scope, since_ms, include_reported)
            .await
            .map_err(|e| SeedError(e.to_string()))
    }
}
