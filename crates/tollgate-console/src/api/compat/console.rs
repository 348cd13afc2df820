//! Seed 004's console paths in its envelope `{"code":0,"data":…}`: the quota card
//! (`/api/console/stats`), the daily trend, the latest calls and the export. Its key paths are in
//! [`super::keys`].

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_core::Role;
use tollgate_core::time::{DAY_MS, day_start, now_ms};
use tollgate_store::{AggregateOrder, Grouping};
use utoipa::{IntoParams, ToSchema};

use super::SeedEnvelope;
use crate::ConsoleState;
use crate::api::quotas::quota_view;
use crate::api::usage::{
    LogPage, LogQuery, Percentiles, SeriesPoint, TopItem, UsageQuery, UsageSummary, log_page,
    series_points, top_items, totals,
};
use crate::api::views::KeyView;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;

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
    let today = day_start(now);
    let scope = UsageQuery {
        from: Some(today - (days - 1) * DAY_MS),
        to: Some(today + DAY_MS),
        ..UsageQuery::default()
    }
    .scope(&caller)?;
    let points = series_points(&state, &scope, Grouping::Day, Percentiles::Skipped).await?;
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
    let summary_30d = totals(state.store.as_ref(), &scope.rollups, Percentiles::Sketched).await?;
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
            daily: series_points(&state, &scope, Grouping::Day, Percentiles::Sketched).await?,
            top_keys: top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Key,
                AggregateOrder::CallsDesc,
                10,
                Percentiles::Sketched,
            )
            .await?,
            top_routes: top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Route,
                AggregateOrder::CallsDesc,
                10,
                Percentiles::Sketched,
            )
            .await?,
            models: top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Model,
                AggregateOrder::TokensDesc,
                50,
                Percentiles::Sketched,
            )
            .await?,
            keys,
        },
    }))
}
