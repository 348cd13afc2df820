//! Seed 000's paths: an edge gateway's usage report (`POST /api/usage-log`) and the usage
//! statistics (`/api/usage/stats`, `/api/usage/token/{id}`, `/api/usage/route`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use tollgate_core::time::now_ms;
use tollgate_store::{AggregateOrder, Grouping};
use utoipa::ToSchema;

use crate::ConsoleState;
use crate::api::ingest::{
    Logged, UsageLog, accept, authorize, require_json, time_window, usage_logs_from_body,
};
use crate::api::usage::{
    Percentiles, SeriesPoint, TopItem, UsageQuery, UsageSummary, series_points, top_items, totals,
};
use crate::api::views::KeyView;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiBytes, ApiPath};

/// Records an edge gateway's report of a call (the seed's shape; also a JSON array of them),
/// attributed to the route it names. In a batch each bad report is refused on its own and named
/// by index; unknown fields are ignored and named.
#[utoipa::path(post, path = "/api/usage-log", tag = "ingest", request_body = UsageLog,
    responses((status = 200, body = Logged), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security((), ("ingest_signature" = []), ("ingest_token" = [])))]
pub async fn usage_log(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Logged>> {
    authorize(&state, &headers, &body).await?;
    require_json(&headers)?;
    let parsed = usage_logs_from_body(&body, time_window(&state))?;
    let answer = accept(&state, parsed).await?;
    Ok(Json(Logged {
        status: "logged",
        count: answer.accepted,
        accepted: answer.accepted,
        rejected: answer.rejected,
        ignored_fields: answer.ignored_fields,
    }))
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
    pub top_tokens: Vec<SeedItem>,
    /// Top 10 routes by calls.
    pub top_routes: Vec<SeedItem>,
    /// Every route's share of calls.
    pub route_distribution: Vec<SeedItem>,
}

/// One key or route in seed 000's lists, in the same units as the top level: the success rate is
/// a percent (0 to 100) and the response time a mean in ms, as everywhere in this answer. (The
/// `/api/v1/usage` answers give `success_rate` as a share, 0 to 1.)
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedItem {
    /// Key or route id (0 for calls without one).
    pub id: Option<i64>,
    /// Key or route name.
    pub name: String,
    /// Calls.
    pub calls: i64,
    /// Calls with status ≥ 400.
    pub errors: i64,
    /// Percent of calls below 400, 0 to 100 (100 when there were no calls).
    pub success_rate: f64,
    /// Mean response time, ms.
    pub avg_response_time: f64,
    /// Total tokens.
    pub total_tokens: i64,
    /// Cost, US dollars.
    pub cost_usd: f64,
}

/// A share (0 to 1) as a percent with two decimals, as the seed shows it.
fn percent(share: f64) -> f64 {
    (share * 10_000.0).round() / 100.0
}

impl From<TopItem> for SeedItem {
    fn from(item: TopItem) -> Self {
        let s = &item.summary;
        Self {
            id: item.id,
            success_rate: percent(s.success_rate),
            calls: s.calls,
            errors: s.errors,
            avg_response_time: s.avg_latency_ms,
            total_tokens: s.total_tokens,
            cost_usd: s.cost_usd,
            name: item.name,
        }
    }
}

fn seed_items(items: Vec<TopItem>) -> Vec<SeedItem> {
    items.into_iter().map(SeedItem::from).collect()
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
    let points = series_points(&state, &scope, Grouping::Hour, Percentiles::Skipped).await?;
    let summary = totals(state.store.as_ref(), &scope.rollups, Percentiles::Skipped).await?;
    Ok(Json(SeedStats {
        total_calls: summary.calls,
        success_rate: percent(summary.success_rate),
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
        top_tokens: seed_items(
            top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Key,
                AggregateOrder::CallsDesc,
                10,
                Percentiles::Skipped,
            )
            .await?,
        ),
        top_routes: seed_items(
            top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Route,
                AggregateOrder::CallsDesc,
                10,
                Percentiles::Skipped,
            )
            .await?,
        ),
        route_distribution: seed_items(
            top_items(
                state.store.as_ref(),
                &scope.rollups,
                Grouping::Route,
                AggregateOrder::CallsDesc,
                1000,
                Percentiles::Skipped,
            )
            .await?,
        ),
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
        last_24h: totals(state.store.as_ref(), &day.rollups, Percentiles::Skipped).await?,
        last_30d: totals(state.store.as_ref(), &month.rollups, Percentiles::Skipped).await?,
        hourly: series_points(&state, &day, Grouping::Hour, Percentiles::Skipped).await?,
        routes: top_items(
            state.store.as_ref(),
            &month.rollups,
            Grouping::Route,
            AggregateOrder::CallsDesc,
            100,
            Percentiles::Skipped,
        )
        .await?,
        models: top_items(
            state.store.as_ref(),
            &month.rollups,
            Grouping::Model,
            AggregateOrder::TokensDesc,
            100,
            Percentiles::Skipped,
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
            Percentiles::Skipped,
        )
        .await?,
    ))
}
