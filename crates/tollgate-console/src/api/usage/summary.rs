//! Totals, series and top-N over the hourly roll-ups.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_core::sketch::LatencySketch;
use tollgate_core::time::{DAY_MS, HOUR_MS};
use tollgate_core::usage::histogram_quantile;
use tollgate_store::rollup::LatencySketches;
use tollgate_store::{AggregateOrder, Grouping, RollupFilter, Store, UsageAggregate};
use utoipa::{IntoParams, ToSchema};

use super::{Scope, UsageQuery};
use crate::ConsoleState;
use crate::api::vocabulary::{Bucket, Grouping as By, SortOrder};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;

/// Totals of a set of calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
// A field missing from an older server's answer (the remote CLI) reads as empty.
#[serde(default)]
pub struct UsageSummary {
    /// Calls.
    pub calls: i64,
    /// Calls with status ≥ 400.
    pub errors: i64,
    /// Share of calls below 400 among those of known status, 0 to 1 (1 when there were none);
    /// reported calls without a status count neither as successes nor as errors.
    pub success_rate: f64,
    /// Mean latency, ms.
    pub avg_latency_ms: f64,
    /// Median latency, ms: within 2 % of the true one from 0.1 ms to 10 minutes (latency
    /// sketches), or the upper bound of a coarse bucket when `coarse` is true. 0 below 0.1 ms,
    /// 600000 (10 minutes) for latencies above.
    pub p50_latency_ms: Option<f64>,
    /// 90th percentile latency, ms (as `p50_latency_ms`).
    pub p90_latency_ms: Option<f64>,
    /// 95th percentile latency, ms (as `p50_latency_ms`).
    pub p95_latency_ms: Option<f64>,
    /// 99th percentile latency, ms (as `p50_latency_ms`).
    pub p99_latency_ms: Option<f64>,
    /// 99.9th percentile latency, ms (as `p50_latency_ms`).
    pub p999_latency_ms: Option<f64>,
    /// Whether the latency percentiles come from the roll-ups' 24 coarse buckets (each reported
    /// as its bucket's upper bound) rather than from latency sketches: some of the calls were
    /// rolled up before sketches were kept (migration 0014), or a status-class filter or
    /// grouping is set (sketches are not kept per status class).
    pub coarse: bool,
    /// Median upstream latency (time until the upstream's response head), ms, over the calls
    /// that reached an upstream and were sketched; within 2 %. `None` when there were none.
    pub upstream_p50_latency_ms: Option<f64>,
    /// 90th percentile upstream latency, ms.
    pub upstream_p90_latency_ms: Option<f64>,
    /// 95th percentile upstream latency, ms.
    pub upstream_p95_latency_ms: Option<f64>,
    /// 99th percentile upstream latency, ms.
    pub upstream_p99_latency_ms: Option<f64>,
    /// 99.9th percentile upstream latency, ms.
    pub upstream_p999_latency_ms: Option<f64>,
    /// Median upstream time to last byte (from sending the request upstream until the upstream's
    /// answer ended), ms, over the calls whose upstream answer ended and was sketched; within 2 %.
    /// Beside `upstream_p50_latency_ms` (first byte) it tells a slow provider from a slow
    /// stream, and beside `p50_latency_ms` (total) a slow gateway from a slow upstream. `None`
    /// when there were none (also for calls recorded before it was kept).
    pub upstream_last_byte_p50_ms: Option<f64>,
    /// 90th percentile upstream time to last byte, ms.
    pub upstream_last_byte_p90_ms: Option<f64>,
    /// 95th percentile upstream time to last byte, ms.
    pub upstream_last_byte_p95_ms: Option<f64>,
    /// 99th percentile upstream time to last byte, ms.
    pub upstream_last_byte_p99_ms: Option<f64>,
    /// 99.9th percentile upstream time to last byte, ms.
    pub upstream_last_byte_p999_ms: Option<f64>,
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
    /// Calls that used tokens of a model without a price: their cost is unknown ("no price"),
    /// not zero, and is not in `cost_usd`.
    pub unpriced_calls: i64,
}

impl From<&UsageAggregate> for UsageSummary {
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    fn from(a: &UsageAggregate) -> Self {
        Self {
            calls: a.calls,
            errors: a.errors,
            success_rate: a.success_rate(),
            avg_latency_ms: if a.calls == 0 {
                0.0
            } else {
                a.latency_sum_us as f64 / a.calls as f64 / 1000.0
            },
            p50_latency_ms: histogram_quantile(&a.latency_hist, 0.50),
            p90_latency_ms: histogram_quantile(&a.latency_hist, 0.90),
            p95_latency_ms: histogram_quantile(&a.latency_hist, 0.95),
            p99_latency_ms: histogram_quantile(&a.latency_hist, 0.99),
            p999_latency_ms: histogram_quantile(&a.latency_hist, 0.999),
            coarse: a.calls > 0,
            upstream_p50_latency_ms: None,
            upstream_p90_latency_ms: None,
            upstream_p95_latency_ms: None,
            upstream_p99_latency_ms: None,
            upstream_p999_latency_ms: None,
            upstream_last_byte_p50_ms: None,
            upstream_last_byte_p90_ms: None,
            upstream_last_byte_p95_ms: None,
            upstream_last_byte_p99_ms: None,
            upstream_last_byte_p999_ms: None,
            prompt_tokens: a.prompt_tokens,
            completion_tokens: a.completion_tokens,
            total_tokens: a.total_tokens,
            cached_tokens: a.cached_tokens,
            reasoning_tokens: a.reasoning_tokens,
            estimated_calls: a.estimated_calls,
            cost_usd: a.cost_usd,
            unpriced_calls: a.unpriced_calls,
        }
    }
}

impl UsageSummary {
    /// Takes the percentiles from `sketches`, the latency sketches of the same calls, where they
    /// cover every call; the upstream ones (first and last byte) from them in any case. Without sketches for all its
    /// calls the summary keeps the coarse percentiles and says so.
    pub fn refine(&mut self, sketches: Option<&LatencySketches>) {
        let Some(sketches) = sketches else {
            return;
        };
        let quantiles =
            |s: &LatencySketch| [0.50, 0.90, 0.95, 0.99, 0.999].map(|q| s.quantile_ms(q));
        let sketched = i64::try_from(sketches.total.count()).unwrap_or(i64::MAX);
        // More sketched calls than counted ones: a batch committed between the two reads.
        if self.calls > 0 && sketched >= self.calls {
            [
                self.p50_latency_ms,
                self.p90_latency_ms,
                self.p95_latency_ms,
                self.p99_latency_ms,
                self.p999_latency_ms,
            ] = quantiles(&sketches.total);
            self.coarse = false;
        }
        [
            self.upstream_p50_latency_ms,
            self.upstream_p90_latency_ms,
            self.upstream_p95_latency_ms,
            self.upstream_p99_latency_ms,
            self.upstream_p999_latency_ms,
        ] = quantiles(&sketches.upstream);
        [
            self.upstream_last_byte_p50_ms,
            self.upstream_last_byte_p90_ms,
            self.upstream_last_byte_p95_ms,
            self.upstream_last_byte_p99_ms,
            self.upstream_last_byte_p999_ms,
        ] = quantiles(&sketches.upstream_last_byte);
    }
}

/// Whether an answer reports latency percentiles, and so reads the latency sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentiles {
    /// Read the sketches: percentiles within 2 % where they cover the calls.
    Sketched,
    /// Only the roll-ups (the answer does not show percentiles).
    Skipped,
}

/// The latency sketches of `filter` per group of `grouping` (only of `groups`, their
/// `(bucket, label)`, when given), by (bucket, label); empty when `percentiles` is `Skipped`.
async fn sketches_by_group(
    store: &dyn Store,
    filter: &RollupFilter,
    grouping: Grouping,
    groups: Option<&[(i64, String)]>,
    percentiles: Percentiles,
) -> ApiResult<HashMap<(i64, String), LatencySketches>> {
    if percentiles == Percentiles::Skipped {
        return Ok(HashMap::new());
    }
    Ok(store
        .latency_sketches(filter, grouping, groups)
        .await?
        .into_iter()
        .map(|g| ((g.bucket, g.label), g.sketches))
        .collect())
}

/// One point of a series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the hour or day, epoch ms (UTC).
    pub ts: i64,
    /// The totals of that bucket.
    #[serde(flatten)]
    pub summary: UsageSummary,
    /// Day points of `/api/v1/usage/series` only: tokens reported by the token counters the caller
    /// can see on that UTC day, shown beside the gateway's usage, never added to it (0 when a
    /// key, route, model or status filter is set). Absent on hourly points: readings are daily.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_tokens: Option<i64>,
}

/// One group of a top-N or breakdown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopItem {
    /// Key, route or team id (null for models, and 0 for "none").
    pub id: Option<i64>,
    /// Key, route or team name, or the model.
    pub name: String,
    /// The group's totals.
    #[serde(flatten)]
    pub summary: UsageSummary,
}

/// `GET /api/v1/usage/summary` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SummaryView {
    /// Start, epoch ms.
    pub from: i64,
    /// End, epoch ms.
    pub to: i64,
    /// Totals.
    #[serde(flatten)]
    pub summary: UsageSummary,
    /// Tokens reported by the token counters the caller can see, in the range: shown beside the
    /// gateway's usage, never added to the totals. Counters belong to a team (or to everyone),
    /// not to a key, route or model, so this is 0 when one of those filters is set.
    pub reported_tokens: i64,
}

/// The totals of the roll-ups matching `filter` (zeros when nothing matches).
pub async fn totals(
    store: &dyn Store,
    filter: &RollupFilter,
    percentiles: Percentiles,
) -> ApiResult<UsageSummary> {
    // The roll-ups first: a batch committed in between adds to the sketches, never only to the
    // counts (see `UsageSummary::refine`).
    let rows = store
        .aggregate_usage(filter, Grouping::Total, AggregateOrder::Bucket, 1)
        .await?;
    let mut summary = UsageSummary::from(rows.first().unwrap_or(&UsageAggregate::default()));
    let sketches = sketches_by_group(store, filter, Grouping::Total, None, percentiles).await?;
    summary.refine(sketches.get(&(0, String::new())));
    Ok(summary)
}

/// Totals, success rate, latency percentiles, tokens and cost for a range and filters.
#[utoipa::path(get, path = "/api/v1/usage/summary", tag = "usage", params(UsageQuery),
    responses((status = 200, body = SummaryView), (status = 422, body = ErrorBody)))]
pub async fn summary(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<SummaryView>> {
    let scope = q.scope(&caller)?;
    let summary = totals(state.store.as_ref(), &scope.rollups, Percentiles::Sketched).await?;
    let reported_tokens = reported_by_day(&state, &caller, &q, &scope)
        .await?
        .values()
        .fold(0_i64, |sum, t| sum.saturating_add(*t));
    Ok(Json(SummaryView {
        from: scope.from_ms,
        to: scope.to_ms,
        summary,
        reported_tokens,
    }))
}

/// Tokens reported by the counters the caller can see (of the query's team, when given), per UTC
/// day start (epoch ms) in the scope. Empty when a key, route, model or status filter is set:
/// counters belong to a team, not to one of those.
async fn reported_by_day(
    state: &ConsoleState,
    caller: &Caller,
    q: &UsageQuery,
    scope: &Scope,
) -> ApiResult<BTreeMap<i64, i64>> {
    let mut by_day = BTreeMap::new();
    if q.key_id.is_some() || q.route_id.is_some() || q.model.is_some() || q.status_class.is_some() {
        return Ok(by_day);
    }
    for counter in state.store.list_counters().await? {
        let in_team = q.team_id.is_none_or(|team| counter.team_id == team);
        if in_team && crate::api::counters::may_read(caller, &counter) {
            let days = state
                .store
                .counter_daily(Some(counter.id), scope.from_ms, scope.to_ms)
                .await?;
            for (day, tokens, _) in days {
                let sum: &mut i64 = by_day.entry(day).or_default();
                *sum = sum.saturating_add(tokens);
            }
        }
    }
    Ok(by_day)
}

/// Series query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// `hour` (ranges up to 7 days) or `day` (default for ranges over 2 days).
    pub bucket: Option<Bucket>,
    /// Start, epoch ms (default: `to` minus `range`).
    pub from: Option<i64>,
    /// End (exclusive), epoch ms (default: now).
    pub to: Option<i64>,
    /// Length when `from` is not given, e.g. `24h`, `7d`, `30d`; at most `400d`.
    pub range: Option<String>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this route.
    pub route_id: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this status class: 2, 3, 4 or 5.
    pub status_class: Option<i16>,
}

/// Builds a complete series (empty buckets included) for the scope.
pub async fn series_points(
    state: &ConsoleState,
    scope: &Scope,
    bucket: Grouping,
    percentiles: Percentiles,
) -> ApiResult<Vec<SeriesPoint>> {
    let step = if bucket == Grouping::Hour {
        HOUR_MS
    } else {
        DAY_MS
    };
    let rows = state
        .store
        .aggregate_usage(&scope.rollups, bucket, AggregateOrder::Bucket, 10_000)
        .await?;
    let sketches = sketches_by_group(
        state.store.as_ref(),
        &scope.rollups,
        bucket,
        None,
        percentiles,
    )
    .await?;
    let by_ts: HashMap<i64, &UsageAggregate> = rows.iter().map(|r| (r.bucket, r)).collect();
    let empty = UsageAggregate::default();
    let mut points = Vec::new();
    let mut ts = scope.from_ms - scope.from_ms.rem_euclid(step);
    while ts < scope.to_ms {
        let mut summary = UsageSummary::from(*by_ts.get(&ts).unwrap_or(&&empty));
        summary.refine(sketches.get(&(ts, String::new())));
        points.push(SeriesPoint {
            ts,
            summary,
            reported_tokens: None,
        });
        ts += step;
    }
    Ok(points)
}

/// Calls, errors, latency, tokens and cost per hour (ranges up to 7 days) or per day; day points
/// also carry the tokens the token counters reported that day.
#[utoipa::path(get, path = "/api/v1/usage/series", tag = "usage", params(SeriesQuery),
    responses((status = 200, body = [SeriesPoint]), (status = 422, body = ErrorBody)))]
pub async fn series(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> ApiResult<Json<Vec<SeriesPoint>>> {
    let filters = usage_filter!(q);
    let scope = filters.scope(&caller)?;
    let span = scope.to_ms - scope.from_ms;
    let bucket = match q.bucket {
        Some(Bucket::Hour) if span > 7 * DAY_MS => {
            return Err(ApiError::invalid(
                "bucket",
                "hourly series cover at most 7 days",
            ));
        }
        Some(bucket) => Grouping::from(bucket),
        None if span <= 2 * DAY_MS => Grouping::Hour,
        None => Grouping::Day,
    };
    let mut points = series_points(&state, &scope, bucket, Percentiles::Sketched).await?;
    if bucket == Grouping::Day {
        let reported = reported_by_day(&state, &caller, &filters, &scope).await?;
        for p in &mut points {
            p.reported_tokens = Some(reported.get(&p.ts).copied().unwrap_or(0));
        }
    }
    Ok(Json(points))
}

/// Top-N query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopQuery {
    /// `key` (default), `route`, `model`, `team` or `status_class`.
    pub by: Option<By>,
    /// `calls` (default) or `tokens`.
    pub order: Option<SortOrder>,
    /// 1 to 100 (default 10).
    pub limit: Option<i64>,
    /// Start, epoch ms (default: `to` minus `range`).
    pub from: Option<i64>,
    /// End (exclusive), epoch ms (default: now).
    pub to: Option<i64>,
    /// Length when `from` is not given, e.g. `24h`, `7d`, `30d`; at most `400d`.
    pub range: Option<String>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this route.
    pub route_id: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this status class: 2, 3, 4 or 5.
    pub status_class: Option<i16>,
}

/// Top groups with their names resolved.
pub async fn top_items(
    store: &dyn Store,
    filter: &RollupFilter,
    by: Grouping,
    order: AggregateOrder,
    limit: i64,
    percentiles: Percentiles,
) -> ApiResult<Vec<TopItem>> {
    let rows = store.aggregate_usage(filter, by, order, limit).await?;
    // The sketches of the groups ranked first only: one look-up for those N groups, never one
    // merge per group in the range.
    let ranked: Vec<(i64, String)> = rows.iter().map(|r| (r.bucket, r.label.clone())).collect();
    // The names are looked up meanwhile.
    let names = async {
        ApiResult::<HashMap<i64, String>>::Ok(match by {
            Grouping::Key => store
                .list_keys(None)
                .await?
                .into_iter()
                .map(|k| (k.id, k.name))
                .collect(),
            Grouping::Route => store
                .list_routes()
                .await?
                .into_iter()
                .map(|r| (r.id, r.name))
                .collect(),
            Grouping::Team => store
                .list_teams()
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect(),
            _ => HashMap::new(),
        })
    };
    let (sketches, names) = tokio::join!(
        sketches_by_group(store, filter, by, Some(&ranked), percentiles),
        names
    );
    let (sketches, names) = (sketches?, names?);
    Ok(rows
        .iter()
        .map(|r| {
            let (id, name) = match by {
                Grouping::Model => (
                    None,
                    if r.label.is_empty() {
                        "(none)".to_owned()
                    } else {
                        r.label.clone()
                    },
                ),
                Grouping::StatusClass => (
                    Some(r.bucket),
                    if r.bucket == 0 {
                        "other".into()
                    } else {
                        format!("{}xx", r.bucket)
                    },
                ),
                _ => (
                    Some(r.bucket),
                    names.get(&r.bucket).cloned().unwrap_or_else(|| {
                        if r.bucket == 0 {
                            "(none)".into()
                        } else {
                            format!("#{}", r.bucket)
                        }
                    }),
                ),
            };
            let mut summary = UsageSummary::from(r);
            summary.refine(sketches.get(&(r.bucket, r.label.clone())));
            TopItem { id, name, summary }
        })
        .collect())
}

/// The roll-up grouping of a `by` word (default `key`), for callers that hold it as text.
pub fn grouping_of(by: Option<&str>) -> ApiResult<Grouping> {
    by.unwrap_or("key")
        .parse::<By>()
        .map(Grouping::from)
        .map_err(|e| ApiError::invalid("by", e))
}

/// The order of an `order` word (default `calls`), for callers that hold it as text.
pub fn order_of(order: Option<&str>) -> ApiResult<AggregateOrder> {
    order
        .unwrap_or("calls")
        .parse::<SortOrder>()
        .map(AggregateOrder::from)
        .map_err(|e| ApiError::invalid("order", e))
}

/// Top keys, routes, models, teams or status classes by calls or tokens, with cached and reasoning tokens.
#[utoipa::path(get, path = "/api/v1/usage/top", tag = "usage", params(TopQuery),
    responses((status = 200, body = [TopItem]), (status = 422, body = ErrorBody)))]
pub async fn top(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TopQuery>,
) -> ApiResult<Json<Vec<TopItem>>> {
    let scope = usage_filter!(q).scope(&caller)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 100"));
    }
    let by = Grouping::from(q.by.unwrap_or(By::Key));
    Ok(Json(
        top_items(
            state.store.as_ref(),
            &scope.rollups,
            by,
            AggregateOrder::from(q.order.unwrap_or(SortOrder::Calls)),
            limit,
            Percentiles::Sketched,
        )
        .await?,
    ))
}
