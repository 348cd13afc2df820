//! Reading usage: aggregates over the hourly and daily roll-ups (never raw events, so dashboards
//! stay fast at millions of events), searching raw events for call logs and exports, and retention.

use async_trait::async_trait;
use serde::Serialize;
use tollgate_core::UsageEvent;
use tollgate_core::time::HOUR_MS;
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
    /// Whether it names a team, key, route or model: the dimensions raw events have no index of
    /// their own for, whose pages [`search_by_hours`] reads.
    pub fn names_a_dimension(&self) -> bool {
        self.team_ids.is_some()
            || self.key_id.is_some()
            || self.route_id.is_some()
            || self.model.is_some()
    }

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

/// Hours asked of the roll-ups at a time by [`search_by_hours`]: a page of a busy filter fills
/// in the first; a sparse filter's page reads a few such lists.
const HOURS_AT_ONCE: i64 = 64;

/// What a backend answers for a call-log page planned by the hourly roll-ups
/// ([`search_by_hours`]), on one connection.
#[async_trait]
pub trait HourlyEvents: Send {
    /// The newest `limit` hours from `rollups.from_ms` on (an hour's start) that start before
    /// `end` (any when `None`), in which the roll-up rows matching `rollups`' dimensions and status
    /// class count calls; newest first.
    async fn hours_with_calls(
        &mut self,
        rollups: &RollupFilter,
        end: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<i64>>;
    /// The oldest hour of any hourly roll-up row.
    async fn first_hour(&mut self) -> StoreResult<Option<i64>>;
    /// The events matching `filter` with `from <= ts < to` (where given), strictly after `after`
    /// in the `ts DESC, id DESC` order, newest first, at most `limit`.
    async fn events_in(
        &mut self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        span: (Option<i64>, Option<i64>),
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
}

/// A call-log page (see [`AnalyticsQueries::search_usage`]) read only in the hours whose roll-up
/// rows count calls of `filter`'s team, key, route and model, newest first, adjacent hours as one span: raw events need no index per team, key, route or
/// model (each costs the writer an insert per event), and a backend with daily partitions plans
/// only the span's. Events older than every roll-up hour are looked for last, in one span: the
/// clean-up of roll-ups and events cuts both at an instant, which leaves the events of the hour
/// it cut in without their roll-up row.
pub async fn search_by_hours<S: HourlyEvents + ?Sized>(
    source: &mut S,
    filter: &EventFilter,
    after: Option<EventCursor>,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    let mut page: Vec<StoredEvent> = Vec::new();
    let missing = |page: &Vec<StoredEvent>| limit - i64::try_from(page.len()).unwrap_or(limit);
    // Events before `end` are still to be looked at (`None`: all of them).
    let mut end = match (filter.to_ms, after.map(|c| c.ts_ms.saturating_add(1))) {
        (Some(to), Some(cursor)) => Some(to.min(cursor)),
        (to, cursor) => to.or(cursor),
    };
    // The status is tested in the index entry of each event; asked of the roll-ups as well, it
    // cost PostgreSQL a row read per roll-up row of the team (55 ms for a team's 5xx page).
    // From the hour holding `from_ms` on (the floor saturates at the start of time).
    let from_hour = filter.from_ms.map_or(i64::MIN, |from| {
        from.div_euclid(HOUR_MS).saturating_mul(HOUR_MS)
    });
    let rollups = RollupFilter {
        status_class: None,
        ..filter.counting_rollups(from_hour, i64::MAX)
    };
    // One team at a time: an index on (team_id, hour) yields one team's hours newest first and
    // stops after a few; several teams' hours would first be gathered and sorted, all of them.
    let each_team: Vec<RollupFilter> = match &rollups.team_ids {
        Some(teams) if teams.len() > 1 => teams
            .iter()
            .map(|team| RollupFilter {
                team_ids: Some(vec![*team]),
                ..rollups.clone()
            })
            .collect(),
        _ => vec![rollups],
    };
    loop {
        let mut hours = Vec::new();
        for rollups in &each_team {
            hours.extend(source.hours_with_calls(rollups, end, HOURS_AT_ONCE).await?);
        }
        hours.sort_unstable_by(|a, b| b.cmp(a));
        hours.dedup();
        hours.truncate(usize::try_from(HOURS_AT_ONCE).unwrap_or(usize::MAX));
        let Some(&oldest) = hours.last() else { break };
        for (from, to) in hour_spans(&hours) {
            let to = end.map_or(to, |end| end.min(to));
            let found = source
                .events_in(filter, after, (Some(from), Some(to)), missing(&page))
                .await?;
            page.extend(found);
            if missing(&page) <= 0 {
                return Ok(page);
            }
        }
        end = Some(oldest);
    }
    let before = match (source.first_hour().await?, end) {
        (Some(hour), Some(end)) => Some(hour.min(end)),
        (hour, end) => hour.or(end),
    };
    let older = source
        .events_in(filter, after, (None, before), missing(&page))
        .await?;
    page.extend(older);
    Ok(page)
}

/// `[from, to)` spans of ms covering `hours` (hour starts, newest first), adjacent hours joined;
/// newest first.
fn hour_spans(hours: &[i64]) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for &hour in hours {
        let to = hour.saturating_add(HOUR_MS);
        match spans.last_mut() {
            Some(last) if last.0 == to => last.0 = hour,
            _ => spans.push((hour, to)),
        }
    }
    spans
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
    fn spans_join_adjacent_hours_newest_first() {
        let h = HOUR_MS;
        assert_eq!(
            hour_spans(&[9 * h, 8 * h, 7 * h, 4 * h, 2 * h, h]),
            vec![(7 * h, 10 * h), (4 * h, 5 * h), (h, 3 * h)]
        );
        assert_eq!(hour_spans(&[]), Vec::<(i64, i64)>::new());
        assert_eq!(hour_spans(&[i64::MAX - 5]), vec![(i64::MAX - 5, i64::MAX)]);
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
