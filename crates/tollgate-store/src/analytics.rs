//! Reading usage: aggregates over the hourly and daily roll-ups (never raw events, so dashboards
//! stay fast at millions of events), searching raw events for call logs and exports, and retention.

use async_trait::async_trait;
use serde::Serialize;
use tollgate_core::UsageEvent;
use tollgate_core::usage::HISTOGRAM_LEN;

use crate::StoreResult;
use crate::rollup::LatencySketches;

/// Which roll-up rows to aggregate. Every filter is optional; they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupFilter {
    /// `hour >= from_ms` (epoch ms; callers align it to the hour).
    pub from_ms: i64,
    /// `hour < to_ms`.
    pub to_ms: i64,
    /// Only these teams; `None` for all (instance admins). An empty list matches nothing.
    pub team_ids: Option<Vec<i64>>,
    /// One key.
    pub key_id: Option<i64>,
    /// One route.
    pub route_id: Option<i64>,
    /// One model (exact; `""` for calls without a model).
    pub model: Option<String>,
    /// One status class: 2, 3, 4, 5 (0 for anything else).
    pub status_class: Option<i16>,
}

/// How aggregated rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// One row: the totals.
    Total,
    /// One row per hour (`bucket` = the hour's start, epoch ms).
    Hour,
    /// One row per UTC day (`bucket` = the day's start, epoch ms).
    Day,
    /// One row per key (`bucket` = key id, 0 for unattributed).
    Key,
    /// One row per route (`bucket` = route id, 0 for none).
    Route,
    /// One row per team (`bucket` = team id, 0 for unattributed).
    Team,
    /// One row per model (`label` = model, `""` for none).
    Model,
    /// One row per status class (`bucket` = 0, 2, 3, 4, 5).
    StatusClass,
}

/// Sums of one group of roll-up rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageAggregate {
    /// The group's numeric value (hour/day start, key/route/team id, status class; 0 for `Total`
    /// and `Model`).
    pub bucket: i64,
    /// The group's text value (the model for `Model`; empty otherwise).
    pub label: String,
    /// Calls.
    pub calls: i64,
    /// Calls with status ≥ 400.
    pub errors: i64,
    /// Calls of unknown status (status class 0: reported without one), neither successes nor
    /// errors.
    pub unknown_calls: i64,
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

impl UsageAggregate {
    /// Share of the calls of known status that succeeded (below 400), 0 to 1; 1 when there were
    /// none. Calls of unknown status count neither way.
    pub fn success_rate(&self) -> f64 {
        let known = self.calls - self.unknown_calls;
        if known <= 0 {
            1.0
        } else {
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let rate = (known - self.errors) as f64 / known as f64;
            rate
        }
    }
}

/// The merged latency sketches of one group of rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyGroup {
    /// The group's numeric value, as in [`UsageAggregate::bucket`].
    pub bucket: i64,
    /// The group's text value, as in [`UsageAggregate::label`].
    pub label: String,
    /// The sketches.
    pub sketches: LatencySketches,
}

/// How aggregated groups are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateOrder {
    /// By `bucket` then `label`, ascending (series).
    Bucket,
    /// By calls, descending, then bucket/label ascending (top-N).
    CallsDesc,
    /// By total tokens, descending, then bucket/label ascending (top-N by tokens).
    TokensDesc,
}

/// Which raw events to list. Every filter is optional; they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// `ts >= from_ms`.
    pub from_ms: Option<i64>,
    /// `ts < to_ms`.
    pub to_ms: Option<i64>,
    /// Only these teams; `None` for all. An empty list matches nothing.
    pub team_ids: Option<Vec<i64>>,
    /// One key.
    pub key_id: Option<i64>,
    /// One route.
    pub route_id: Option<i64>,
    /// One model (exact).
    pub model: Option<String>,
    /// One exact status.
    pub status: Option<u16>,
    /// One status class (2, 3, 4, 5).
    pub status_class: Option<i16>,
    /// Case-insensitive substring of the path, the error message or the user agent (at most 200
    /// characters; `%` and `_` match themselves).
    pub text: Option<String>,
}

/// A position in the newest-first event order: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventCursor {
    /// Its `ts`.
    pub ts_ms: i64,
    /// Its row id.
    pub id: i64,
}

/// A stored event with its row id (for cursors and detail links).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Row id.
    pub id: i64,
    /// The event.
    pub event: UsageEvent,
}

/// Usage analytics, call logs and retention.
#[async_trait]
pub trait AnalyticsQueries {
    /// Aggregates the roll-up rows matching `filter`, grouped by `grouping`, ordered by `order`,
    /// at most `limit` groups. Groups with no calls are not returned. Reads the roll-ups only:
    /// `usage_daily` for the whole UTC days in the range, `usage_hourly` for the hours around
    /// them (and for the whole range when grouping by `Hour` or when it holds no whole day).
    async fn aggregate_usage(
        &self,
        filter: &RollupFilter,
        grouping: Grouping,
        order: AggregateOrder,
        limit: i64,
    ) -> StoreResult<Vec<UsageAggregate>>;
    /// The latency sketches of the calls matching `filter`, merged per group of `grouping`,
    /// ordered by bucket then label; with `groups`, only those groups (their `(bucket, label)`
    /// as [`UsageAggregate`] names them; for a key, route, team or model grouping), so that a
    /// top-N list reads the sketches of the N groups it ranked first and no others. Sketches
    /// are kept per team, key, route and model only: with a status-class filter, or grouped by
    /// status class, the answer is empty (callers fall back to the roll-ups' coarse histogram).
    /// Reads `summary_daily` for the whole UTC days in the range and `summary_hourly` for the
    /// hours around them (or for all of it when grouping by `Hour`), of the summary rows that
    /// answer where there are some ([`crate::rollup::SketchRows`]), never the roll-ups
    /// themselves.
    async fn latency_sketches(
        &self,
        filter: &RollupFilter,
        grouping: Grouping,
        groups: Option<&[(i64, String)]>,
    ) -> StoreResult<Vec<LatencyGroup>>;
    /// Matching raw events, newest first (`ts DESC, id DESC`), strictly after `after` in that
    /// order, at most `limit`.
    async fn search_usage(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// One raw event by row id.
    async fn usage_event(&self, id: i64) -> StoreResult<Option<StoredEvent>>;
    /// Deletes raw events with `ts < before_ms`, at most `batch` rows per transaction, until none
    /// is left; returns how many. Writers are never blocked for longer than one batch. A backend
    /// may instead remove a whole day at once where that costs writers no more (PostgreSQL drops
    /// the day's partition); the count still includes its rows.
    async fn delete_usage_before(&self, before_ms: i64, batch: i64) -> StoreResult<u64>;
    /// Deletes the oldest raw events until at most `max_rows` remain, `batch` rows per
    /// transaction; returns how many.
    async fn trim_usage(&self, max_rows: i64, batch: i64) -> StoreResult<u64>;
    /// Deletes hourly roll-up rows with `hour < before_ms` and daily ones with `day <` `before_ms`
    /// aligned down to its UTC day (only whole days: the day holding the cut keeps its daily row,
    /// so whole-day aggregates still count its hours before the cut), and the latency sketches
    /// of the same hours and days; returns how many roll-up rows of both grains went.
    async fn delete_rollups_before(&self, before_ms: i64) -> StoreResult<u64>;
}
