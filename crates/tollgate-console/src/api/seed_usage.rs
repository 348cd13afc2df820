//! Token quotas (instance-wide and per team) and the seed-compatible analytics paths: seed 000's
//! `/api/usage/*`, seed 001's dashboard overview, seed 004's `/api/console/*` (`{"code":0,"data":…}`).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_core::Role;
use tollgate_core::time::now_ms;
use tollgate_store::{AggregateOrder, Grouping, RollupFilter};
use utoipa::{IntoParams, ToSchema};

use super::admin::{AuditView, SeedEnvelope};
use super::usage::{
    LogPage, LogQuery, SeriesPoint, TopItem, UsageQuery, UsageSummary, log_page, series_points,
    top_items, totals,
};
use super::views::KeyView;
use crate::ConsoleState;
use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

const DAY_MS: i64 = 86_400_000;

/// A token quota as set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaSetting {
    /// Tokens allowed per period (≥ 1); `null` removes the quota.
    pub tokens: Option<i64>,
    /// `month` (default: the current UTC calendar month) or `total` (all time).
    #[serde(default)]
    pub period: QuotaPeriod,
}

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    /// The current UTC calendar month.
    #[default]
    Month,
    /// All time.
    Total,
}

/// A quota with its use.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    /// `instance` or `team`.
    pub scope: String,
    /// The team, for team quotas.
    pub team_id: Option<i64>,
    /// The quota; null when none is set.
    pub quota_tokens: Option<i64>,
    /// Period counted.
    pub period: QuotaPeriod,
    /// Start of the period, epoch ms.
    pub period_start: i64,
    /// Tokens used in the period (gateway, ingest and, instance-wide, reported counters).
    pub used_tokens: i64,
    /// `quota − used` (never below 0); null without a quota.
    pub remaining_tokens: Option<i64>,
    /// `used / quota × 100`, two decimals; null without a quota.
    pub usage_percent: Option<f64>,
    /// Calls in the period.
    pub calls: i64,
}

fn setting_name(team: Option<i64>) -> String {
    team.map_or_else(
        || "quota.instance".to_owned(),
        |t| format!("quota.team.{t}"),
    )
}

async fn quota_setting(state: &ConsoleState, team: Option<i64>) -> ApiResult<QuotaSetting> {
    match state.store.setting(&setting_name(team)).await? {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| ApiError::Internal(format!("quota setting: {e}"))),
        None => Ok(QuotaSetting {
            tokens: None,
            period: QuotaPeriod::Month,
        }),
    }
}

/// Start of the current UTC month, epoch ms.
fn month_start(now: i64) -> i64 {
    // Civil-from-days (Howard Hinnant's algorithm) to find the first day of this month.
    let days = now.div_euclid(DAY_MS);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day_of_month = doy - (153 * mp + 2) / 5; // 0-based
    (days - day_of_month) * DAY_MS
}

/// The quota view of the instance (`team` = None) or of one team.
pub async fn quota_view(state: &ConsoleState, team: Option<i64>) -> ApiResult<QuotaView> {
    let setting = quota_setting(state, team).await?;
    let now = now_ms();
    let start = match setting.period {
        QuotaPeriod::Month => month_start(now),
        QuotaPeriod::Total => 0,
    };
    let filter = RollupFilter {
        from_ms: start,
        to_ms: now + 3_600_000,
        team_ids: team.map(|t| vec![t]),
        ..RollupFilter::default()
    };
    let totals = state
        .store
        .aggregate_usage(&filter, Grouping::Total, AggregateOrder::Bucket, 1)
        .await?;
    let (mut used, calls) = totals.first().map_or((0, 0), |t| (t.total_tokens, t.calls));
    if team.is_none() {
        used += state
            .store
            .counter_daily(None, start, now + 1)
            .await?
            .iter()
            .map(|(_, tokens, _)| tokens)
            .sum::<i64>();
    }
    let (remaining, percent) = match setting.tokens {
        Some(q) if q > 0 => {
            #[expect(clippy::cast_precision_loss, reason = "token counts far below 2^52")]
            let pct = (used as f64 / q as f64 * 10_000.0).round() / 100.0;
            (Some((q - used).max(0)), Some(pct))
        }
        _ => (None, None),
    };
    Ok(QuotaView {
        scope: if team.is_some() {
            "team".into()
        } else {
            "instance".into()
        },
        team_id: team,
        quota_tokens: setting.tokens,
        period: setting.period,
        period_start: start,
        used_tokens: used,
        remaining_tokens: remaining,
        usage_percent: percent,
        calls,
    })
}

/// Every quota the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotasView {
    /// The instance-wide quota (instance admins only).
    pub instance: Option<QuotaView>,
    /// Team quotas of the caller's teams.
    pub teams: Vec<QuotaView>,
}

/// Token quotas with their use: instance-wide (instance admins) and per team.
#[utoipa::path(get, path = "/api/v1/quotas", tag = "usage", responses((status = 200, body = QuotasView), (status = 401, body = ErrorBody)))]
pub async fn list_quotas(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<QuotasView>> {
    let instance = if caller.user.is_admin {
        Some(quota_view(&state, None).await?)
    } else {
        None
    };
    let mut teams = Vec::new();
    for team in state.store.list_teams().await? {
        if caller.role_in(team.id).is_some() {
            teams.push(quota_view(&state, Some(team.id)).await?);
        }
    }
    Ok(Json(QuotasView { instance, teams }))
}

fn check_quota(q: &QuotaSetting) -> ApiResult<()> {
    if q.tokens
        .is_some_and(|t| !(1..=1_000_000_000_000_000).contains(&t))
    {
        return Err(ApiError::invalid(
            "tokens",
            "tokens must be 1 to 10^18, or null to remove the quota",
        ));
    }
    Ok(())
}

async fn save_quota(
    state: &ConsoleState,
    caller: &Caller,
    team: Option<i64>,
    q: QuotaSetting,
) -> ApiResult<QuotaView> {
    caller.require_admin()?;
    check_quota(&q)?;
    let text = serde_json::to_string(&q).map_err(|e| ApiError::Internal(e.to_string()))?;
    state.store.set_setting(&setting_name(team), &text).await?;
    let what = q.tokens.map_or_else(
        || "removed".to_owned(),
        |t| format!("{t} tokens per {:?}", q.period).to_lowercase(),
    );
    let change = Change::new("setting.change", "setting", setting_name(team))
        .team(team)
        .summary(format!("token quota {what}"));
    audit::record(state.store.as_ref(), caller, change).await;
    quota_view(state, team).await
}

/// Sets the instance-wide token quota (instance admins).
#[utoipa::path(put, path = "/api/v1/quotas/instance", tag = "usage", request_body = QuotaSetting,
    responses((status = 200, body = QuotaView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_instance_quota(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(q): ApiJson<QuotaSetting>,
) -> ApiResult<Json<QuotaView>> {
    Ok(Json(save_quota(&state, &caller, None, q).await?))
}

/// Sets a team's token quota (instance admins).
#[utoipa::path(put, path = "/api/v1/quotas/teams/{id}", tag = "usage", request_body = QuotaSetting, params(("id" = i64, Path, description = "Team id")),
    responses((status = 200, body = QuotaView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_team_quota(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(q): ApiJson<QuotaSetting>,
) -> ApiResult<Json<QuotaView>> {
    caller.require(id, Role::Viewer)?;
    state
        .store
        .team_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("team {id} does not exist")))?;
    Ok(Json(save_quota(&state, &caller, Some(id), q).await?))
}

/// Seed 000's statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedStats {
    /// Calls in the last 24 hours.
    pub total_calls: i64,
    /// Percent of calls below 400, 0 to 100.
    pub success_rate: f64,
    /// Mean response time, ms.
    pub avg_response_time: f64,
    /// Calls with status ≥ 400.
    pub error_count: i64,
    /// 24 hourly points: calls and mean response time.
    pub hourly_trend: Vec<SeedHour>,
    /// Top 10 keys by calls.
    pub top_tokens: Vec<TopItem>,
    /// Top 10 routes by calls.
    pub top_routes: Vec<TopItem>,
    /// Every route's share of calls.
    pub route_distribution: Vec<TopItem>,
}

/// One hour of seed 000's trend.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedHour {
    /// Start of the hour, epoch ms.
    pub hour: i64,
    /// Calls.
    pub calls: i64,
    /// Mean response time, ms.
    pub avg_response_time: f64,
}

fn last_day() -> UsageQuery {
    UsageQuery {
        range: Some("24h".into()),
        ..UsageQuery::default()
    }
}

/// Seed 000: totals, success rate, response time, errors, 24-hour trend, top keys and routes.
#[utoipa::path(get, path = "/api/usage/stats", tag = "seed", responses((status = 200, body = SeedStats), (status = 401, body = ErrorBody)))]
pub async fn usage_stats(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<SeedStats>> {
    let scope = last_day().scope(&caller)?;
    let points = series_points(&state, &scope, Grouping::Hour).await?;
    let summary = totals(state.store.as_ref(), &scope.rollups).await?;
    Ok(Json(SeedStats {
        total_calls: summary.calls,
        success_rate: (summary.success_rate * 10_000.0).round() / 100.0,
        avg_response_time: summary.avg_latency_ms,
        error_count: summary.errors,
        hourly_trend: points
            .iter()
            .rev()
            .take(24)
            .rev()
            .map(|p| SeedHour {
                hour: p.ts,
                calls: p.summary.calls,
                avg_response_time: p.summary.avg_latency_ms,
            })
            .collect(),
        top_tokens: top_items(
            state.store.as_ref(),
            &scope.rollups,
            Grouping::Key,
            AggregateOrder::CallsDesc,
            10,
        )
        .await?,
        top_routes: top_items(
            state.store.as_ref(),
            &scope.rollups,
            Grouping::Route,
            AggregateOrder::CallsDesc,
            10,
        )
        .await?,
        route_distribution: top_items(
            state.store.as_ref(),
            &scope.rollups,
            Grouping::Route,
            AggregateOrder::CallsDesc,
            1000,
        )
        .await?,
    }))
}

/// Seed 000's per-key detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyUsage {
    /// The key.
    pub key: KeyView,
    /// Last 24 hours.
    pub last_24h: UsageSummary,
    /// Last 30 days.
    pub last_30d: UsageSummary,
    /// Hourly series of the last 24 hours.
    pub hourly: Vec<SeriesPoint>,
    /// Its routes by calls over 30 days.
    pub routes: Vec<TopItem>,
    /// Its models by tokens over 30 days.
    pub models: Vec<TopItem>,
}

/// Seed 000: one key's usage.
#[utoipa::path(get, path = "/api/usage/token/{id}", tag = "seed", params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = KeyUsage), (status = 404, body = ErrorBody)))]
pub async fn key_usage(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<KeyUsage>> {
    let key = match state.store.key_by_id(id).await? {
        Some(k) if caller.role_in(k.team_id).is_some() => k,
        _ => return Err(ApiError::NotFound(format!("key {id} does not exist"))),
    };
    let day = UsageQuery {
        key_id: Some(id),
        range: Some("24h".into()),
        ..UsageQuery::default()
    }
    .scope(&caller)?;
    let month = UsageQuery {
        key_id: Some(id),
        range: Some("30d".into()),
        ..UsageQuery::default()
    }
    .scope(&caller)?;
    Ok(Json(KeyUsage {
        key: KeyView::of(&key, now_ms()),
        last_24h: totals(state.store.as_ref(), &day.rollups).await?,
        last_30d: totals(state.store.as_ref(), &month.rollups).await?,
        hourly: series_points(&state, &day, Grouping::Hour).await?,
        routes: top_items(
            state.store.as_ref(),
            &month.rollups,
            Grouping::Route,
            AggregateOrder::CallsDesc,
            100,
        )
        .await?,
        models: top_items(
            state.store.as_ref(),
            &month.rollups,
            Grouping::Model,
            AggregateOrder::TokensDesc,
            100,
        )
        .await?,
    }))
}

/// Seed 000: usage per route over the last 24 hours.
#[utoipa::path(get, path = "/api/usage/route", tag = "seed", responses((status = 200, body = [TopItem]), (status = 401, body = ErrorBody)))]
pub async fn route_usage(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TopItem>>> {
    let scope = last_day().scope(&caller)?;
    Ok(Json(
        top_items(
            state.store.as_ref(),
            &scope.rollups,
            Grouping::Route,
            AggregateOrder::CallsDesc,
            1000,
        )
        .await?,
    ))
}

/// Seed 001's dashboard overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    /// Keys the caller can see.
    pub total_keys: usize,
    /// Active (not revoked, not expired) keys.
    pub active_keys: usize,
    /// Routes the caller can see.
    pub total_routes: usize,
    /// Teams the caller can see.
    pub total_teams: usize,
    /// Keys expiring within 30 days.
    pub expiring_soon: usize,
    /// Keys created per day over the last 7 days: `{ts, count}`.
    pub key_creation_trend: Vec<DayCount>,
    /// Teams with the most keys (top 5).
    pub team_key_distribution: Vec<TeamCount>,
    /// The keys expiring within 30 days, soonest first.
    pub expiring_keys: Vec<KeyView>,
    /// The 10 latest audit entries the caller may read.
    pub recent_activity: Vec<AuditView>,
}

/// A count on one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayCount {
    /// Day start (UTC), epoch ms.
    pub ts: i64,
    /// Count.
    pub count: i64,
}

/// Keys of one team.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamCount {
    /// Team id.
    pub team_id: i64,
    /// Team name.
    pub team: String,
    /// Keys.
    pub keys: i64,
}

/// Seed 001: counts of keys, routes and teams, expiring keys, key creation trend, latest activity.
#[utoipa::path(get, path = "/api/dashboard/overview", tag = "seed", responses((status = 200, body = Overview), (status = 401, body = ErrorBody)))]
pub async fn overview(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Overview>> {
    let now = now_ms();
    let keys: Vec<_> = state
        .store
        .list_keys(None)
        .await?
        .into_iter()
        .filter(|k| caller.role_in(k.team_id).is_some())
        .collect();
    let routes = state
        .store
        .list_routes()
        .await?
        .into_iter()
        .filter(|r| r.team_id.is_none_or(|t| caller.role_in(t).is_some()))
        .count();
    let teams: Vec<_> = state
        .store
        .list_teams()
        .await?
        .into_iter()
        .filter(|t| caller.role_in(t.id).is_some())
        .collect();
    let active = |k: &&tollgate_store::KeyRecord| {
        k.revoked_at_ms.is_none() && k.expires_at_ms.is_none_or(|t| t > now)
    };
    let mut expiring: Vec<_> = keys
        .iter()
        .filter(active)
        .filter(|k| k.expires_at_ms.is_some_and(|t| t <= now + 30 * DAY_MS))
        .collect();
    expiring.sort_by_key(|k| k.expires_at_ms);
    let today = now - now.rem_euclid(DAY_MS);
    let trend = (0..7)
        .rev()
        .map(|d| {
            let ts = today - d * DAY_MS;
            let count = keys
                .iter()
                .filter(|k| (ts..ts + DAY_MS).contains(&k.created_at_ms))
                .count();
            DayCount {
                ts,
                count: i64::try_from(count).unwrap_or(i64::MAX),
            }
        })
        .collect();
    let mut dist: Vec<TeamCount> = teams
        .iter()
        .map(|t| TeamCount {
            team_id: t.id,
            team: t.name.clone(),
            keys: i64::try_from(keys.iter().filter(|k| k.team_id == t.id).count()).unwrap_or(0),
        })
        .filter(|t| t.keys > 0)
        .collect();
    dist.sort_by(|a, b| b.keys.cmp(&a.keys).then(a.team.cmp(&b.team)));
    dist.truncate(5);
    let (recent, _) = state.store.list_audit(&caller.audit_scope(), 10, 0).await?;
    Ok(Json(Overview {
        total_keys: keys.len(),
        active_keys: keys.iter().filter(active).count(),
        total_routes: routes,
        total_teams: teams.len(),
        expiring_soon: expiring.len(),
        key_creation_trend: trend,
        team_key_distribution: dist,
        expiring_keys: expiring.into_iter().map(|k| KeyView::of(k, now)).collect(),
        recent_activity: recent.into_iter().map(AuditView::from).collect(),
    }))
}

/// Seed 004's quota card.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleStats {
    /// The quota (null when none is set).
    pub total_tokens: Option<i64>,
    /// Tokens used in the quota's period.
    pub used_tokens: i64,
    /// Tokens left (null without a quota).
    pub remaining_tokens: Option<i64>,
    /// Percent used (null without a quota).
    pub usage_percent: Option<f64>,
    /// Calls in the period.
    pub api_call_count: i64,
}

/// Which quota the seed's stats show.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// A team's quota; default: instance-wide for instance admins, else the caller's first team.
    pub team_id: Option<i64>,
}

/// Seed 004: the token quota with used, remaining and percent.
#[utoipa::path(get, path = "/api/console/stats", tag = "seed", params(StatsQuery),
    responses((status = 200, body = SeedEnvelope<ConsoleStats>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn console_stats(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<SeedEnvelope<ConsoleStats>>> {
    let team = match q.team_id {
        Some(t) => {
            caller.require(t, Role::Viewer)?;
            Some(t)
        }
        None if caller.user.is_admin => None,
        None => Some(
            caller
                .roles
                .keys()
                .next()
                .copied()
                .ok_or_else(|| ApiError::NotFound("you belong to no team".into()))?,
        ),
    };
    let v = quota_view(&state, team).await?;
    Ok(Json(SeedEnvelope {
        code: 0,
        data: ConsoleStats {
            total_tokens: v.quota_tokens,
            used_tokens: v.used_tokens,
            remaining_tokens: v.remaining_tokens,
            usage_percent: v.usage_percent,
            api_call_count: v.calls,
        },
    }))
}

/// Days of the seed's trend.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrendQuery {
    /// 7 to 90 (default 7).
    pub days: Option<i64>,
}

/// One day of the seed's trend.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendDay {
    /// Day start (UTC), epoch ms.
    pub date: i64,
    /// Calls.
    pub calls: i64,
    /// Total tokens (gateway and ingest).
    pub tokens: i64,
    /// Tokens reported by counters that day (instance admins).
    pub reported_tokens: i64,
}

/// Seed 004: daily calls and tokens for the last N days (7 to 90).
#[utoipa::path(get, path = "/api/console/usage-trend", tag = "seed", params(TrendQuery),
    responses((status = 200, body = SeedEnvelope<Vec<TrendDay>>), (status = 422, body = ErrorBody)))]
pub async fn usage_trend(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TrendQuery>,
) -> ApiResult<Json<SeedEnvelope<Vec<TrendDay>>>> {
    let days = q.days.unwrap_or(7);
    if !(7..=90).contains(&days) {
        return Err(ApiError::invalid("days", "days must be 7 to 90"));
    }
    let now = now_ms();
    let today = now - now.rem_euclid(DAY_MS);
    let scope = UsageQuery {
        from: Some(today - (days - 1) * DAY_MS),
        to: Some(today + DAY_MS),
        ..UsageQuery::default()
    }
    .scope(&caller)?;
    let points = series_points(&state, &scope, Grouping::Day).await?;
    let reported = if caller.user.is_admin {
        state
            .store
            .counter_daily(None, scope.from_ms, scope.to_ms)
            .await?
    } else {
        Vec::new()
    };
    let data = points
        .iter()
        .map(|p| TrendDay {
            date: p.ts,
            calls: p.summary.calls,
            tokens: p.summary.total_tokens,
            reported_tokens: reported
                .iter()
                .filter(|(d, _, _)| *d == p.ts)
                .map(|(_, t, _)| t)
                .sum(),
        })
        .collect();
    Ok(Json(SeedEnvelope { code: 0, data }))
}

/// Seed 004: the latest calls, with search and filters.
#[utoipa::path(get, path = "/api/console/logs", tag = "seed", params(LogQuery),
    responses((status = 200, body = SeedEnvelope<LogPage>), (status = 422, body = ErrorBody)))]
pub async fn console_logs(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<SeedEnvelope<LogPage>>> {
    Ok(Json(SeedEnvelope {
        code: 0,
        data: log_page(&state, &caller, &q, 100).await?,
    }))
}

/// Seed 004's export: every statistic in one document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleExport {
    /// When it was made, epoch ms.
    pub generated_at: i64,
    /// The quota card.
    pub stats: ConsoleStats,
    /// Last 30 days' totals.
    pub summary_30d: UsageSummary,
    /// Daily series over 30 days.
    pub daily: Vec<SeriesPoint>,
    /// Top keys, 30 days.
    pub top_keys: Vec<TopItem>,
    /// Top routes, 30 days.
    pub top_routes: Vec<TopItem>,
    /// Models by tokens, 30 days.
    pub models: Vec<TopItem>,
    /// The caller's keys (masked).
    pub keys: Vec<KeyView>,
}

/// Seed 004: all statistics as one JSON document.
#[utoipa::path(get, path = "/api/console/export", tag = "seed", responses((status = 200, body = SeedEnvelope<ConsoleExport>), (status = 401, body = ErrorBody)))]
pub async fn console_export(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<SeedEnvelope<ConsoleExport>>> {
    let Json(stats) = console_stats(
        State(state.clone()),
        caller.clone(),
        ApiQuery(StatsQuery { team_id: None }),
    )
    .await?;
    let scope = UsageQuery {
        range: Some("30d".into()),
        ..UsageQuery::default()
    }
    .scope(&caller)?;
    let summary_30d = totals(state.store.as_ref(), &scope.rollups).await?;
    let now = now_ms();
    let keys = state
        .store
        .list_keys(None)
        .await?
        .iter()
        .filter(|k| caller.role_in(k.team_id).is_some())
        .map(|k| KeyView::of(k, now))
        .collect();
    Ok(Json(SeedEnvelope {
        code: 0,
        data: ConsoleExport {
            generated_at: now,
            stats: stats.data,
            summary_30d,
            daily: series_points(&state, &scope, Grouping::Day).await?,
            top_keys: top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Key,
                AggregateOrder::CallsDesc,
                10,
            )
            .await?,
            top_routes: top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Route,
                AggregateOrder::CallsDesc,
                10,
            )
            .await?,
            models: top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Model,
                AggregateOrder::TokensDesc,
                50,
            )
            .await?,
            keys,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_start_is_the_first_of_the_month_utc() {
        // 2026-11-23T17:56:00Z → 2026-11-01T00:00:00Z
        assert_eq!(month_start(1_795_456_560_000), 1_793_491_200_000);
        // 2024-02-29T12:00:00Z → 2024-02-01
        assert_eq!(month_start(1_709_208_000_000), 1_706_745_600_000);
        // exactly on the first
        assert_eq!(month_start(1_706_745_600_000), 1_706_745_600_000);
    }
}
