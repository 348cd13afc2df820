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

impl EventFilter {
    /// The roll-up rows of `[from_ms, to_ms)` that count every event this filter matches: all
    /// its filters but the text, and an exact status counted by its class. Their calls are the
    /// filter's events where it has neither, and an upper bound otherwise.
    pub fn counting_rollups(&self, from_ms: i64, to_ms: i64) -> RollupFilter {
        RollupFilter {
            from_ms,
            to_ms,
            team_ids: self.team_ids.clone(),
            key_id: self.key_id,
            route_id: self.route_id,
            model: self.model.clone(),
            status_class: self
                .status_class
                .or_else(|| self.status.map(tollgate_core::usage::status_class)),
        }
    }
}

/// Where a page of raw events is looked for: the hourly roll-ups of the filter's recent hours
/// say from which hour on there are enough matching events, so that a backend whose events lie
/// in daily partitions reads the newest one or two instead of planning and opening them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageSpans {
    /// Each hour's start with the calls counted from it on, newest first.
    from_hour: Vec<(i64, i64)>,
}

impl PageSpans {
    /// The spans of `hours` (hourly counts, as [`AnalyticsQueries::aggregate_usage`] answers
    /// them grouped by [`Grouping::Hour`], in any order).
    pub fn new(hours: &[UsageAggregate]) -> Self {
        let mut newest_first: Vec<(i64, i64)> = hours.iter().map(|h| (h.bucket, h.calls)).collect();
        newest_first.sort_unstable_by_key(|(start, _)| std::cmp::Reverse(*start));
        let mut calls = 0_i64;
        for (_, counted) in &mut newest_first {
            calls = calls.saturating_add(*counted);
            *counted = calls;
        }
        Self {
            from_hour: newest_first,
        }
    }

    /// The newest hour from which on at least `calls` are counted; `None` when all the hours
    /// count fewer. Where the counts are exact, the events from it on hold `calls` of them.
    pub fn start_for(&self, calls: i64) -> Option<i64> {
        self.from_hour
            .iter()
            .find(|(_, counted)| *counted >= calls)
            .map(|(start, _)| *start)
    }

    /// The calls counted from hour `start` on.
    fn counted_from(&self, start: i64) -> i64 {
        self.from_hour
            .iter()
            .take_while(|(hour, _)| *hour >= start)
            .last()
            .map_or(0, |(_, counted)| *counted)
    }

    /// Where to look next after the span from `start` on held `found` of the `wanted` events
    /// (the counts are an upper bound: a text filter, events counted after a cursor): back far
    /// enough to hold the missing ones twice over at the rate the span matched (where none
    /// matched, a rate of one in what it counted), or to the oldest hour where they count too
    /// few: a sparse match is more likely found in a day's partitions than worth planning them
    /// all. `None` when `start` is the oldest hour: everything before it is next.
    pub fn next_start(&self, start: i64, found: i64, wanted: i64) -> Option<i64> {
        let counted = self.counted_from(start);
        let more = (wanted - found).saturating_mul(counted).saturating_mul(2) / found.max(1);
        self.start_for(counted.saturating_add(more).saturating_add(1))
            .or_else(|| self.from_hour.last().map(|(oldest, _)| *oldest))
            .filter(|next| *next < start)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(bucket: i64, calls: i64) -> UsageAggregate {
        UsageAggregate {
            bucket,
            calls,
            ..UsageAggregate::default()
        }
    }

    #[test]
    fn a_page_span_starts_at_the_newest_hour_that_completes_the_page() {
        let spans = PageSpans::new(&[hour(1, 40), hour(3, 30), hour(2, 15)]);
        assert_eq!(spans.start_for(30), Some(3), "the newest hour alone");
        assert_eq!(spans.start_for(45), Some(2), "30 + 15");
        assert_eq!(spans.start_for(46), Some(1));
        assert_eq!(spans.start_for(86), None, "all of them count 85");
        assert_eq!(PageSpans::new(&[]).start_for(1), None);
    }

    #[test]
    fn the_next_span_holds_the_missing_events_twice_over_at_the_rate_found() {
        let spans = PageSpans::new(&[hour(4, 100), hour(3, 100), hour(2, 100), hour(1, 1_000)]);
        // 10 of 100 counted matched, 40 missing: 800 more counted calls, to hour 1.
        assert_eq!(spans.next_start(4, 10, 50), Some(1));
        // 50 of 100 matched, 10 missing: 40 more, hour 3 holds them.
        assert_eq!(spans.next_start(4, 50, 60), Some(3));
        // Nothing of 100 matched: as if one had, 3 × 100 × 2 more.
        assert_eq!(spans.next_start(4, 0, 3), Some(1), "600 more");
        // The hours count too few: all of them, from the oldest.
        assert_eq!(spans.next_start(4, 0, 50), Some(1));
        assert_eq!(spans.next_start(4, 1, 1_000), Some(1));
        assert_eq!(
            spans.next_start(1, 10, 50),
            None,
            "no hour before the oldest"
        );
    }

    #[test]
    fn counting_rollups_keep_every_filter_but_the_text() {
        let filter = EventFilter {
            from_ms: Some(5),
            to_ms: Some(9),
            team_ids: Some(vec![1, 2]),
            key_id: Some(3),
            route_id: Some(4),
            model: Some("gpt-4o".into()),
            status: Some(503),
            status_class: None,
            text: Some("timeout".into()),
        };
        let rollups = filter.counting_rollups(0, 10);
        assert_eq!(
            rollups,
            RollupFilter {
                from_ms: 0,
                to_ms: 10,
                team_ids: Some(vec![1, 2]),
                key_id: Some(3),
                route_id: Some(4),
                model: Some("gpt-4o".into()),
                status_class: Some(5),
            }
        );
        let class = EventFilter {
            status_class: Some(4),
            ..EventFilter::default()
        };
        assert_eq!(class.counting_rollups(0, 1).status_class, Some(4));
    }
}
