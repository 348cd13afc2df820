//! Usage analytics over the hourly roll-ups (totals, percentiles, series, top-N, breakdowns), call
//! logs over raw events with cursor pagination, and streamed exports. Every answer is limited to
//! the teams the caller may see; unattributed usage is visible to instance admins only.

use futures_util::StreamExt as _;
use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tollgate_core::Role;
use tollgate_core::spreadsheet::text_cell;
use tollgate_core::time::{DAY_MS, HOUR_MS, now_ms};
use tollgate_core::usage::histogram_quantile;
use tollgate_store::{
    AggregateOrder, EventCursor, EventFilter, Grouping, RollupFilter, Store, StoredEvent,
    UsageAggregate,
};
use utoipa::{IntoParams, ToSchema};

use super::views::MAX_TIME_MS;
pub use super::vocabulary::ExportFormat;
use super::vocabulary::{Bucket, ExportDataset, Grouping as By, SortOrder};
use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};

/// Longest range any usage query covers.
const MAX_RANGE_MS: i64 = 400 * DAY_MS;

/// The shared filters of a query that has its own extra parameters.
macro_rules! usage_filter {
    ($q:expr) => {
        UsageQuery {
            from: $q.from,
            to: $q.to,
            range: $q.range.clone(),
            team_id: $q.team_id,
            key_id: $q.key_id,
            route_id: $q.route_id,
            model: $q.model.clone(),
            status_class: $q.status_class,
        }
    };
}

/// Filters shared by every usage endpoint.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start, epoch ms (default: `to` minus `range`).
    pub from: Option<i64>,
    /// End (exclusive), epoch ms (default: now).
    pub to: Option<i64>,
    /// Length when `from` is not given: `24h` (default), `7d`, `30d`, …, at most `400d`.
    pub range: Option<String>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this route.
    pub route_id: Option<i64>,
    /// Only this model (empty for calls without one).
    pub model: Option<String>,
    /// Only this status class: 2, 3, 4 or 5.
    pub status_class: Option<i16>,
}

/// A resolved, checked time range and filter.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Start, epoch ms.
    pub from_ms: i64,
    /// End, epoch ms.
    pub to_ms: i64,
    /// Roll-up filter (hour-aligned).
    pub rollups: RollupFilter,
}

impl UsageQuery {
    /// Checks the query against the caller's rights and resolves the range.
    pub fn scope(&self, caller: &Caller) -> ApiResult<Scope> {
        let now = now_ms();
        let to = self.to.unwrap_or(now);
        if !(0..MAX_TIME_MS).contains(&to) {
            return Err(ApiError::invalid("to", "`to` must be epoch ms before 9999"));
        }
        let from = match (self.from, &self.range) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "range",
                    "give `from` or `range`, not both",
                ));
            }
            (Some(from), None) => from,
            (None, range) => {
                let text = range.as_deref().unwrap_or("24h");
                let d = tollgate_core::time::parse_duration(text)
                    .map_err(|e| ApiError::invalid("range", e))?;
                let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                if ms > MAX_RANGE_MS {
                    return Err(ApiError::invalid("range", "`range` is at most 400d"));
                }
                to - ms
            }
        };
        if from < 0 || from >= to {
            return Err(ApiError::invalid("from", "`from` must be before `to`"));
        }
        if to - from > MAX_RANGE_MS {
            return Err(ApiError::invalid("from", "a range covers at most 400 days"));
        }
        if let Some(class) = self.status_class
            && ![0, 2, 3, 4, 5].contains(&class)
        {
            return Err(ApiError::invalid(
                "status_class",
                "status_class is 2, 3, 4 or 5",
            ));
        }
        if self.model.as_ref().is_some_and(|m| m.len() > 200) {
            return Err(ApiError::invalid(
                "model",
                "model is longer than 200 characters",
            ));
        }
        let team_ids = match self.team_id {
            Some(team) => {
                caller.require(team, Role::Viewer)?;
                Some(vec![team])
            }
            None => caller.visible_teams(),
        };
        Ok(Scope {
            from_ms: from,
            to_ms: to,
            rollups: RollupFilter {
                // Whole hours: the roll-ups' resolution.
                from_ms: from - from.rem_euclid(HOUR_MS),
                to_ms: to - to.rem_euclid(HOUR_MS)
                    + if to.rem_euclid(HOUR_MS) == 0 {
                        0
                    } else {
                        HOUR_MS
                    },
                team_ids,
                key_id: self.key_id,
                route_id: self.route_id,
                model: self.model.clone(),
                status_class: self.status_class,
            },
        })
    }
}

/// Totals of a set of calls.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct UsageSummary {
    /// Calls.
    pub calls: i64,
    /// Calls with status ≥ 400.
    pub errors: i64,
    /// Share of calls below 400, 0 to 1 (1 when there were no calls).
    pub success_rate: f64,
    /// Mean latency, ms.
    pub avg_latency_ms: f64,
    /// Median latency, ms (from the roll-ups' histogram: within a bucket's resolution).
    pub p50_latency_ms: Option<f64>,
    /// 95th percentile latency, ms.
    pub p95_latency_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_latency_ms: Option<f64>,
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
    /// Cost, US dollars.
    pub cost_usd: f64,
}

impl From<&UsageAggregate> for UsageSummary {
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    fn from(a: &UsageAggregate) -> Self {
        Self {
            calls: a.calls,
            errors: a.errors,
            success_rate: if a.calls == 0 {
                1.0
            } else {
                (a.calls - a.errors) as f64 / a.calls as f64
            },
            avg_latency_ms: if a.calls == 0 {
                0.0
            } else {
                a.latency_sum_us as f64 / a.calls as f64 / 1000.0
            },
            p50_latency_ms: histogram_quantile(&a.latency_hist, 0.50),
            p95_latency_ms: histogram_quantile(&a.latency_hist, 0.95),
            p99_latency_ms: histogram_quantile(&a.latency_hist, 0.99),
            prompt_tokens: a.prompt_tokens,
            completion_tokens: a.completion_tokens,
            total_tokens: a.total_tokens,
            cached_tokens: a.cached_tokens,
            reasoning_tokens: a.reasoning_tokens,
            estimated_calls: a.estimated_calls,
            cost_usd: a.cost_usd,
        }
    }
}

/// One point of a series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the hour or day, epoch ms (UTC).
    pub ts: i64,
    /// The totals of that bucket.
    #[serde(flatten)]
    pub summary: UsageSummary,
}

/// One group of a top-N or breakdown.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Serialize, ToSchema)]
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
pub async fn totals(store: &dyn Store, filter: &RollupFilter) -> ApiResult<UsageSummary> {
    let rows = store
        .aggregate_usage(filter, Grouping::Total, AggregateOrder::Bucket, 1)
        .await?;
    Ok(UsageSummary::from(
        rows.first().unwrap_or(&UsageAggregate::default()),
    ))
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
    let summary = totals(state.store.as_ref(), &scope.rollups).await?;
    let reported_tokens = reported_tokens(&state, &caller, &q, &scope).await?;
    Ok(Json(SummaryView {
        from: scope.from_ms,
        to: scope.to_ms,
        summary,
        reported_tokens,
    }))
}

/// Sum of the increments of the counters the caller can see (of the query's team, when given).
async fn reported_tokens(
    state: &ConsoleState,
    caller: &Caller,
    q: &UsageQuery,
    scope: &Scope,
) -> ApiResult<i64> {
    if q.key_id.is_some() || q.route_id.is_some() || q.model.is_some() || q.status_class.is_some() {
        return Ok(0);
    }
    let mut total = 0_i64;
    for counter in state.store.list_counters().await? {
        let in_team = q.team_id.is_none_or(|team| counter.team_id == team);
        if in_team && super::counters::may_read(caller, &counter) {
            let days = state
                .store
                .counter_daily(Some(counter.id), scope.from_ms, scope.to_ms)
                .await?;
            total = days
                .iter()
                .fold(total, |sum, (_, tokens, _)| sum.saturating_add(*tokens));
        }
    }
    Ok(total)
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
    let by_ts: HashMap<i64, &UsageAggregate> = rows.iter().map(|r| (r.bucket, r)).collect();
    let empty = UsageAggregate::default();
    let mut points = Vec::new();
    let mut ts = scope.from_ms - scope.from_ms.rem_euclid(step);
    while ts < scope.to_ms {
        points.push(SeriesPoint {
            ts,
            summary: UsageSummary::from(*by_ts.get(&ts).unwrap_or(&&empty)),
        });
        ts += step;
    }
    Ok(points)
}

/// Calls, errors, latency, tokens and cost per hour (ranges up to 7 days) or per day.
#[utoipa::path(get, path = "/api/v1/usage/series", tag = "usage", params(SeriesQuery),
    responses((status = 200, body = [SeriesPoint]), (status = 422, body = ErrorBody)))]
pub async fn series(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> ApiResult<Json<Vec<SeriesPoint>>> {
    let scope = usage_filter!(q).scope(&caller)?;
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
    Ok(Json(series_points(&state, &scope, bucket).await?))
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
) -> ApiResult<Vec<TopItem>> {
    let rows = store.aggregate_usage(filter, by, order, limit).await?;
    let names: HashMap<i64, String> = match by {
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
    };
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
            TopItem {
                id,
                name,
                summary: UsageSummary::from(r),
            }
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
        )
        .await?,
    ))
}

/// Call-log query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Start, epoch ms.
    pub from: Option<i64>,
    /// End (exclusive), epoch ms.
    pub to: Option<i64>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this route.
    pub route_id: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
    /// An exact status (e.g. 429) or a class (`2xx`, `4xx`, `5xx`).
    pub status: Option<String>,
    /// Text in the path, error or user agent.
    pub q: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<i64>,
}

/// One call as the logs show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntry {
    /// Row id (for the detail view).
    pub id: i64,
    /// When, epoch ms.
    pub ts: i64,
    /// Key id.
    pub key_id: Option<i64>,
    /// Team id.
    pub team_id: Option<i64>,
    /// Route id.
    pub route_id: Option<i64>,
    /// Route name or reported route.
    pub route: Option<String>,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status.
    pub status: u16,
    /// Latency, ms.
    pub latency_ms: f64,
    /// Upstream latency, ms.
    pub upstream_latency_ms: Option<f64>,
    /// Client address.
    pub client_ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
    /// Cached tokens.
    pub cached_tokens: i64,
    /// Reasoning tokens.
    pub reasoning_tokens: i64,
    /// Whether tokens were estimated.
    pub estimated: bool,
    /// Cost, USD.
    pub cost_usd: f64,
    /// Error.
    pub error: Option<String>,
    /// `gateway`, `ingest` or `middleware`.
    pub source: String,
    /// Request id.
    pub request_id: Option<String>,
}

impl From<&StoredEvent> for LogEntry {
    #[expect(clippy::cast_precision_loss, reason = "latencies far below 2^52 µs")]
    fn from(s: &StoredEvent) -> Self {
        let e = &s.event;
        Self {
            id: s.id,
            ts: e.ts_ms,
            key_id: e.key_id,
            team_id: e.team_id,
            route_id: e.route_id,
            route: e.route.clone(),
            method: e.method.clone(),
            path: e.path.clone(),
            status: e.status,
            latency_ms: e.latency_us as f64 / 1000.0,
            upstream_latency_ms: e.upstream_latency_us.map(|u| u as f64 / 1000.0),
            client_ip: e.client_ip.clone(),
            user_agent: e.user_agent.clone(),
            model: e.model.clone(),
            prompt_tokens: e.tokens.prompt,
            completion_tokens: e.tokens.completion,
            total_tokens: e.tokens.total,
            cached_tokens: e.tokens.cached,
            reasoning_tokens: e.tokens.reasoning,
            estimated: e.estimated,
            cost_usd: e.cost_usd,
            error: e.error.clone(),
            source: e.source.as_str().to_owned(),
            request_id: e.request_id.clone(),
        }
    }
}

/// A page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// Newest first.
    pub items: Vec<LogEntry>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
}

/// The event filter of a log query, limited to what the caller may see.
pub fn event_filter(caller: &Caller, q: &LogQuery) -> ApiResult<EventFilter> {
    for (field, v) in [("from", q.from), ("to", q.to)] {
        if v.is_some_and(|t| !(0..MAX_TIME_MS).contains(&t)) {
            return Err(ApiError::invalid(
                field,
                format!("`{field}` must be epoch ms before 9999"),
            ));
        }
    }
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f >= t
    {
        return Err(ApiError::invalid("from", "`from` must be before `to`"));
    }
    if q.q.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::invalid(
            "q",
            "the search text is longer than 200 characters",
        ));
    }
    if q.model.as_ref().is_some_and(|m| m.len() > 200) {
        return Err(ApiError::invalid(
            "model",
            "model is longer than 200 characters",
        ));
    }
    let (status, status_class) = match q.status.as_deref() {
        None | Some("") => (None, None),
        Some(s) if s.len() == 3 && s.ends_with("xx") => match s.as_bytes()[0] {
            c @ b'2'..=b'5' => (None, Some(i16::from(c - b'0'))),
            _ => {
                return Err(ApiError::invalid(
                    "status",
                    format!("status `{s}` is not 2xx, 3xx, 4xx or 5xx"),
                ));
            }
        },
        Some(s) => match s.parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) => (Some(code), None),
            _ => {
                return Err(ApiError::invalid(
                    "status",
                    format!("status `{s}` is not an HTTP status or a class like 4xx"),
                ));
            }
        },
    };
    let team_ids = match q.team_id {
        Some(team) => {
            caller.require(team, Role::Viewer)?;
            Some(vec![team])
        }
        None => caller.visible_teams(),
    };
    Ok(EventFilter {
        from_ms: q.from,
        to_ms: q.to,
        team_ids,
        key_id: q.key_id,
        route_id: q.route_id,
        model: q.model.clone(),
        status,
        status_class,
        text: q.q.clone().filter(|t| !t.is_empty()),
    })
}

fn parse_cursor(text: &str) -> ApiResult<EventCursor> {
    let bad = || ApiError::invalid("cursor", "the cursor is not one this API returned");
    let (ts, id) = text.split_once('.').ok_or_else(bad)?;
    Ok(EventCursor {
        ts_ms: ts.parse().map_err(|_| bad())?,
        id: id.parse().map_err(|_| bad())?,
    })
}

fn cursor_text(c: EventCursor) -> String {
    format!("{}.{}", c.ts_ms, c.id)
}

/// Reads one page of the call log.
pub async fn log_page(
    state: &ConsoleState,
    caller: &Caller,
    q: &LogQuery,
    default_limit: i64,
) -> ApiResult<LogPage> {
    let filter = event_filter(caller, q)?;
    let limit = q.limit.unwrap_or(default_limit);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is 1 to 500"));
    }
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let rows = state.store.search_usage(&filter, after, limit + 1).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let items: Vec<LogEntry> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(LogEntry::from)
        .collect();
    let next_cursor = if more {
        items.last().map(|e| {
            cursor_text(EventCursor {
                ts_ms: e.ts,
                id: e.id,
            })
        })
    } else {
        None
    };
    Ok(LogPage { items, next_cursor })
}

/// Searches the call log, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/logs", tag = "usage", params(LogQuery),
    responses((status = 200, body = LogPage), (status = 422, body = ErrorBody)))]
pub async fn logs(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    Ok(Json(log_page(&state, &caller, &q, 50).await?))
}

/// One call in full.
#[utoipa::path(get, path = "/api/v1/logs/{id}", tag = "usage", params(("id" = i64, Path, description = "Row id")),
    responses((status = 200, body = LogEntry), (status = 404, body = ErrorBody)))]
pub async fn log_entry(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<LogEntry>> {
    let visible = |team: Option<i64>| match team {
        Some(t) => caller.role_in(t).is_some(),
        None => caller.user.is_admin,
    };
    match state.store.usage_event(id).await? {
        Some(e) if visible(e.event.team_id) => Ok(Json(LogEntry::from(&e))),
        _ => Err(ApiError::NotFound(format!("call {id} does not exist"))),
    }
}

/// Export query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `events` (default), `series` or `top`.
    pub dataset: Option<ExportDataset>,
    /// `csv` (default), `json` or `ndjson`.
    pub format: Option<ExportFormat>,
    /// Start, epoch ms (default: `to` minus `range`, or 7 days ago).
    pub from: Option<i64>,
    /// End, epoch ms.
    pub to: Option<i64>,
    /// How far back from `to` (or now), e.g. `24h`, `7d`, `90d` (at most 400d), as in the other
    /// usage endpoints; instead of `from`.
    pub range: Option<String>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this route.
    pub route_id: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
    /// Status or class (events).
    pub status: Option<String>,
    /// For `top`: key, route, model, team, status_class.
    pub by: Option<By>,
    /// For `series`: hour or day (default day).
    pub bucket: Option<Bucket>,
}

impl ExportFormat {
    /// Parses `csv` (the default), `json` or `ndjson`, for callers that hold the word as text.
    pub fn parse(text: Option<&str>) -> ApiResult<Self> {
        text.unwrap_or("csv")
            .parse()
            .map_err(|e| ApiError::invalid("format", e))
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
        }
    }
}

/// Encodes rows of one serialisable type in a format, piece by piece, so that exports stream.
#[derive(Debug)]
pub struct RowEncoder {
    format: ExportFormat,
    rows: usize,
}

impl RowEncoder {
    /// A new encoder.
    pub fn new(format: ExportFormat) -> Self {
        Self { format, rows: 0 }
    }

    /// The bytes for one row (with the CSV header before the first one).
    pub fn row<T: Serialize>(&mut self, value: &T) -> Vec<u8> {
        let first = self.rows == 0;
        self.rows += 1;
        let mut out = Vec::new();
        match self.format {
            ExportFormat::Json => {
                out.extend_from_slice(if first { b"[\n" } else { b",\n" });
                let _ = serde_json::to_writer(&mut out, value);
            }
            ExportFormat::Ndjson => {
                let _ = serde_json::to_writer(&mut out, value);
                out.push(b'\n');
            }
            ExportFormat::Csv => {
                let Ok(serde_json::Value::Object(map)) = serde_json::to_value(value) else {
                    return out;
                };
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::new());
                if first {
                    let _ = w.write_record(map.keys());
                }
                let _ = w.write_record(map.values().map(|v| match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => text_cell(s).into_owned(),
                    other => other.to_string(),
                }));
                out = w.into_inner().unwrap_or_default();
            }
        }
        out
    }

    /// The closing bytes.
    pub fn finish(&self) -> Vec<u8> {
        match (self.format, self.rows) {
            (ExportFormat::Json, 0) => b"[]\n".to_vec(),
            (ExportFormat::Json, _) => b"\n]\n".to_vec(),
            _ => Vec::new(),
        }
    }
}

fn attachment(format: ExportFormat, name: &str, body: Body) -> Response {
    let disposition = format!(
        "attachment; filename=\"tollgate-{name}.{}\"",
        format.extension()
    );
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// Every key's name by id (deleted keys have none), for exports that show names beside ids.
pub async fn key_names(store: &dyn Store) -> ApiResult<HashMap<i64, String>> {
    Ok(store
        .list_keys(None)
        .await?
        .into_iter()
        .map(|k| (k.id, k.name))
        .collect())
}

/// One exported call: its call-log entry with the key's name (null when the call had no key or
/// the key is gone) right after the key id, so a spreadsheet reads without a second lookup.
pub fn export_row(entry: &LogEntry, names: &HashMap<i64, String>) -> serde_json::Value {
    let key_name = entry.key_id.and_then(|id| names.get(&id)).cloned();
    let serde_json::Value::Object(fields) = serde_json::to_value(entry).unwrap_or_default() else {
        return serde_json::Value::Null;
    };
    let mut row = serde_json::Map::with_capacity(fields.len() + 1);
    for (name, value) in fields {
        let after_key = name == "key_id";
        row.insert(name, value);
        if after_key {
            row.insert("key_name".into(), key_name.clone().into());
        }
    }
    serde_json::Value::Object(row)
}

/// Streams every event matching `filter`, page by page (constant memory whatever the size), each
/// with its key's name from `names`.
pub fn stream_events(
    state: ConsoleState,
    filter: EventFilter,
    format: ExportFormat,
    names: std::sync::Arc<HashMap<i64, String>>,
) -> Body {
    const PAGE: i64 = 2_000;
    let encoder = RowEncoder::new(format);
    let stream = futures_util::stream::unfold(
        (Some(None::<EventCursor>), encoder),
        move |(cursor, mut encoder)| {
            let state = state.clone();
            let filter = filter.clone();
            let names = names.clone();
            async move {
                let after = cursor?;
                match state.store.search_usage(&filter, after, PAGE).await {
                    Ok(rows) => {
                        let mut out = Vec::new();
                        for r in &rows {
                            out.extend(encoder.row(&export_row(&LogEntry::from(r), &names)));
                        }
                        let next = if i64::try_from(rows.len()).unwrap_or(0) < PAGE {
                            out.extend(encoder.finish());
                            None
                        } else {
                            rows.last().map(|r| {
                                Some(EventCursor {
                                    ts_ms: r.event.ts_ms,
                                    id: r.id,
                                })
                            })
                        };
                        Some((Ok::<_, std::io::Error>(out), (next, encoder)))
                    }
                    Err(e) => Some((Err(std::io::Error::other(e.to_string())), (None, encoder))),
                }
            }
        },
    );
    // Fused: the compression layer polls once more after the end, which `unfold` forbids.
    Body::from_stream(stream.fuse())
}

/// Exports events (streamed), a series or a top-N as CSV, JSON or NDJSON.
#[utoipa::path(get, path = "/api/v1/usage/export", tag = "usage", params(ExportQuery),
    responses((status = 200, description = "The file, streamed"), (status = 422, body = ErrorBody)))]
pub async fn export(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = q.format.unwrap_or(ExportFormat::Csv);
    match q.dataset.unwrap_or(ExportDataset::Events) {
        ExportDataset::Events => {
            let (from, to) = match &q.range {
                // Resolved as every usage endpoint resolves it (and refused the same way).
                Some(_) => {
                    let scope = UsageQuery {
                        from: q.from,
                        to: q.to,
                        range: q.range.clone(),
                        team_id: q.team_id,
                        ..UsageQuery::default()
                    }
                    .scope(&caller)?;
                    (scope.from_ms, Some(scope.to_ms))
                }
                None => (q.from.unwrap_or_else(|| now_ms() - 7 * DAY_MS), q.to),
            };
            let logq = LogQuery {
                from: Some(from),
                to,
                team_id: q.team_id,
                key_id: q.key_id,
                route_id: q.route_id,
                model: q.model.clone(),
                status: q.status.clone(),
                q: None,
                cursor: None,
                limit: None,
            };
            let filter = event_filter(&caller, &logq)?;
            let names = std::sync::Arc::new(key_names(state.store.as_ref()).await?);
            Ok(attachment(
                format,
                "events",
                stream_events(state, filter, format, names),
            ))
        }
        dataset @ (ExportDataset::Series | ExportDataset::Top) => {
            let uq = UsageQuery {
                from: q.from,
                to: q.to,
                range: q.range.clone(),
                team_id: q.team_id,
                key_id: q.key_id,
                route_id: q.route_id,
                model: q.model.clone(),
                status_class: None,
            };
            let uq = if q.from.is_none() && q.range.is_none() {
                UsageQuery {
                    range: Some("7d".into()),
                    ..uq
                }
            } else {
                uq
            };
            let scope = uq.scope(&caller)?;
            let mut enc = RowEncoder::new(format);
            let mut out = Vec::new();
            if dataset == ExportDataset::Series {
                let bucket = Grouping::from(q.bucket.unwrap_or(Bucket::Day));
                for p in series_points(&state, &scope, bucket).await? {
                    out.extend(enc.row(&p));
                }
            } else {
                for item in top_items(
                    state.store.as_ref(),
                    &scope.rollups,
                    Grouping::from(q.by.unwrap_or(By::Key)),
                    AggregateOrder::CallsDesc,
                    1000,
                )
                .await?
                {
                    out.extend(enc.row(&item));
                }
            }
            out.extend(enc.finish());
            Ok(attachment(format, dataset.as_str(), Body::from(out)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_frame_their_rows() {
        #[derive(Serialize)]
        struct R {
            a: i64,
            b: Option<String>,
        }
        let mut json = RowEncoder::new(ExportFormat::Json);
        let mut text = json.row(&R { a: 1, b: None });
        text.extend(json.row(&R {
            a: 2,
            b: Some("x,y".into()),
        }));
        text.extend(json.finish());
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(RowEncoder::new(ExportFormat::Json).finish(), b"[]\n");
        let mut csv = RowEncoder::new(ExportFormat::Csv);
        let mut text = csv.row(&R { a: 1, b: None });
        text.extend(csv.row(&R {
            a: 2,
            b: Some("x,y".into()),
        }));
        assert_eq!(String::from_utf8(text).unwrap(), "a,b\n1,\n2,\"x,y\"\n");
        let mut nd = RowEncoder::new(ExportFormat::Ndjson);
        assert_eq!(
            String::from_utf8(nd.row(&R { a: 3, b: None })).unwrap(),
            "{\"a\":3,\"b\":null}\n"
        );
    }
}
