//! The story of reading usage: aggregates over the roll-ups, call-log search page by page, and
//! retention. Every expected answer is computed here from the generated events, never by SQL.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};

use tollgate_core::usage::latency_bucket;
use tollgate_core::{KeyHash, TokenUsage, UsageEvent};
use uuid::Uuid;

use super::{HOUR_MS, key, route, team};
use crate::{
    AggregateOrder, EventCursor, EventFilter, Grouping, KeyRecord, RollupFilter, Store,
    StoredEvent, UsageAggregate,
};

use tollgate_core::time::DAY_MS;
/// 1986-01-01T00:00Z: a range no other step writes to.
const AGGREGATE_BASE: i64 = 504_921_600_000;
/// 1986-01-11T00:00Z: the several days of the whole-day aggregates, between those of the
/// aggregates and of the search.
const DAYS_BASE: i64 = AGGREGATE_BASE + 10 * DAY_MS;
/// 1984-01-01T00:00Z: older than every other step's events, so retention cuts only these.
const RETENTION_BASE: i64 = 441_763_200_000;

const GROUPINGS: [Grouping; 8] = [
    Grouping::Total,
    Grouping::Hour,
    Grouping::Day,
    Grouping::Key,
    Grouping::Route,
    Grouping::Team,
    Grouping::Model,
    Grouping::StatusClass,
];
const ORDERS: [AggregateOrder; 3] = [
    AggregateOrder::Bucket,
    AggregateOrder::CallsDesc,
    AggregateOrder::TokensDesc,
];

/// Runs the analytics story: aggregates, search, retention.
pub async fn usage_analytics(store: &dyn Store) {
    aggregates_match_the_events(store).await;
    aggregates_over_days_match_the_events(store).await;
    search_walks_every_page_in_order(store).await;
    retention_deletes_exactly_what_it_should(store).await;
    super::call_log::sparse_matches_are_found_hour_by_hour(store).await;
}

/// An event as stored: key and team filled in from its hash where the store knows the key.
pub(super) fn attributed(e: &UsageEvent, keys: &[&KeyRecord]) -> UsageEvent {
    let owner = match (e.key_id, &e.key_hash) {
        (None, Some(hash)) => keys.iter().find(|k| &k.key_hash == hash),
        _ => None,
    };
    UsageEvent {
        key_id: e.key_id.or(owner.map(|k| k.id)),
        team_id: e.team_id.or(owner.map(|k| k.team_id)),
        ..e.clone()
    }
}

/// `count` events from `base + 20 h` on, two at each time (ids break the tie), crossing a UTC
/// midnight: keys by id, by hash, by an unknown hash and none; two routes and none; three models
/// and none; every status class, including 0.
fn story_events(base: i64, count: usize, keys: &[&KeyRecord], routes: [i64; 2]) -> Vec<UsageEvent> {
    const STATUSES: [u16; 9] = [200, 200, 201, 404, 500, 302, 429, 503, 99];
    const LATENCIES_US: [i64; 7] = [0, 400, 1_800, 45_000, 950_000, 12_000_000, 90_000_000];
    const MODELS: [Option<&str>; 4] = [Some("gpt-4o"), Some("Zeta-1"), None, Some("claude-3")];
    (0..count)
        .map(|i| {
            let n = i64::try_from(i).expect("small count");
            let path = match i % 10 {
                0 => "/promo/50%_off",
                1 => "/promo/50xyoff",
                2 => "/dir/a\\b",
                _ => "/v1/chat/completions",
            };
            let status = STATUSES[i % STATUSES.len()];
            let mut e = UsageEvent::new(
                base + 20 * HOUR_MS + (n / 2) * 660_000,
                "POST",
                path,
                status,
            );
            let key = keys[(i / 4) % keys.len()];
            match i % 4 {
                0 => {
                    e.key_id = Some(key.id);
                    e.team_id = Some(key.team_id);
                }
                1 => e.key_hash = Some(key.key_hash.clone()),
                2 => e.key_hash = Some(KeyHash::of("a key this store never had")),
                _ => {}
            }
            e.route_id = (i % 5 != 4).then_some(routes[i % 2]);
            e.model = MODELS[(i / 3) % MODELS.len()].map(str::to_owned);
            e.latency_us = LATENCIES_US[i % LATENCIES_US.len()] + n;
            e.tokens = TokenUsage {
                prompt: 10 * n,
                completion: 3 * n + 1,
                total: 13 * n + 1,
                cached: n % 5,
                reasoning: n % 3,
            };
            e.estimated = i.is_multiple_of(3);
            // Multiples of 1/4: sums are exact in any order.
            // Every eleventh call has no price: counted apart, never as $0.
            e.cost_usd = (!i.is_multiple_of(11))
                .then(|| f64::from(u32::try_from(i % 5).expect("small")) * 0.25);
            e.user_agent = Some(
                if i.is_multiple_of(6) {
                    "Story-Agent/1.0"
                } else {
                    "curl/8.5"
                }
                .to_owned(),
            );
            e.error = (status >= 500).then(|| "Upstream TIMEOUT after 30s".to_owned());
            e
        })
        .collect()
}

/// The roll-up dimensions of a stored event.
fn hour_of(e: &UsageEvent) -> i64 {
    e.ts_ms - e.ts_ms.rem_euclid(HOUR_MS)
}

fn class_of(status: u16) -> i16 {
    match status {
        100..=599 => i16::try_from(status / 100).expect("class fits"),
        _ => 0,
    }
}

fn rollup_matches(f: &RollupFilter, e: &UsageEvent) -> bool {
    let hour = hour_of(e);
    hour >= f.from_ms
        && hour < f.to_ms
        && f.team_ids
            .as_ref()
            .is_none_or(|t| t.contains(&e.team_id.unwrap_or(0)))
        && f.key_id.is_none_or(|k| k == e.key_id.unwrap_or(0))
        && f.route_id.is_none_or(|r| r == e.route_id.unwrap_or(0))
        && f.model
            .as_ref()
            .is_none_or(|m| m == e.model.as_deref().unwrap_or(""))
        && f.status_class.is_none_or(|c| c == class_of(e.status))
}

/// What `aggregate_usage` should answer over `events` (stored form).
fn expected_aggregates(
    events: &[UsageEvent],
    filter: &RollupFilter,
    grouping: Grouping,
    order: AggregateOrder,
    limit: i64,
) -> Vec<UsageAggregate> {
    let mut groups: BTreeMap<(i64, String), UsageAggregate> = BTreeMap::new();
    for e in events.iter().filter(|e| rollup_matches(filter, e)) {
        let hour = hour_of(e);
        let (bucket, label) = match grouping {
            Grouping::Total => (0, String::new()),
            Grouping::Hour => (hour, String::new()),
            Grouping::Day => (hour - hour.rem_euclid(DAY_MS), String::new()),
            Grouping::Key => (e.key_id.unwrap_or(0), String::new()),
            Grouping::Route => (e.route_id.unwrap_or(0), String::new()),
            Grouping::Team => (e.team_id.unwrap_or(0), String::new()),
            Grouping::Model => (0, e.model.clone().unwrap_or_default()),
            Grouping::StatusClass => (i64::from(class_of(e.status)), String::new()),
        };
        let g = groups
            .entry((bucket, label.clone()))
            .or_insert_with(|| UsageAggregate {
                bucket,
                label,
                ..UsageAggregate::default()
            });
        g.calls += 1;
        g.errors += i64::from(e.status >= 400);
        g.unknown_calls += i64::from(class_of(e.status) == 0);
        g.latency_sum_us += e.latency_us;
        g.latency_hist[latency_bucket(e.latency_us)] += 1;
        g.prompt_tokens += e.tokens.prompt;
        g.completion_tokens += e.tokens.completion;
        g.total_tokens += e.tokens.total;
        g.cached_tokens += e.tokens.cached;
        g.reasoning_tokens += e.tokens.reasoning;
        g.estimated_calls += i64::from(e.estimated);
        g.cost_usd += e.cost_usd.unwrap_or(0.0);
        g.unpriced_calls += i64::from(e.cost_usd.is_none());
    }
    // BTreeMap order is bucket, then label: the `Bucket` order, which stable sorts keep for ties.
    let mut rows: Vec<UsageAggregate> = groups.into_values().collect();
    match order {
        AggregateOrder::Bucket => {}
        AggregateOrder::CallsDesc => rows.sort_by_key(|r| Reverse(r.calls)),
        AggregateOrder::TokensDesc => rows.sort_by_key(|r| Reverse(r.total_tokens)),
    }
    rows.truncate(usize::try_from(limit.max(0)).expect("fits"));
    rows
}

/// Every grouping, order and filter (alone and combined) sums exactly what the events add up to.
pub async fn aggregates_match_the_events(store: &dyn Store) {
    let team_a = team(store).await;
    let team_b = team(store).await;
    let a1 = key(store, team_a.id).await;
    let a2 = key(store, team_a.id).await;
    let b1 = key(store, team_b.id).await;
    let r1 = route(store, Some(team_a.id)).await;
    let r2 = route(store, None).await;
    let keys = [&a1, &a2, &b1];
    let base = AGGREGATE_BASE;
    let events = story_events(base, 150, &keys, [r1.id, r2.id]);
    assert_eq!(store.write_usage(&events).await.expect("write_usage"), 150);
    let stored: Vec<UsageEvent> = events.iter().map(|e| attributed(e, &keys)).collect();
    // The generator's spread: several hours on each of two UTC days.
    let hours: HashSet<i64> = stored.iter().map(hour_of).collect();
    let days: HashSet<i64> = hours.iter().map(|h| h - h.rem_euclid(DAY_MS)).collect();
    assert!(hours.len() > 10 && days.len() == 2, "{hours:?}");

    let all = RollupFilter {
        from_ms: base,
        to_ms: base + 2 * DAY_MS,
        ..RollupFilter::default()
    };
    let filters = vec![
        ("no filter", all.clone()),
        (
            "both teams",
            RollupFilter {
                team_ids: Some(vec![team_a.id, team_b.id]),
                ..all.clone()
            },
        ),
        (
            "team a",
            RollupFilter {
                team_ids: Some(vec![team_a.id]),
                ..all.clone()
            },
        ),
        (
            "unattributed (team 0) and team b",
            RollupFilter {
                team_ids: Some(vec![0, team_b.id]),
                ..all.clone()
            },
        ),
        (
            "key a2",
            RollupFilter {
                key_id: Some(a2.id),
                ..all.clone()
            },
        ),
        (
            "route r2",
            RollupFilter {
                route_id: Some(r2.id),
                ..all.clone()
            },
        ),
        (
            "no route",
            RollupFilter {
                route_id: Some(0),
                ..all.clone()
            },
        ),
        (
            "model Zeta-1",
            RollupFilter {
                model: Some("Zeta-1".to_owned()),
                ..all.clone()
            },
        ),
        (
            "no model",
            RollupFilter {
                model: Some(String::new()),
                ..all.clone()
            },
        ),
        (
            "status class 4",
            RollupFilter {
                status_class: Some(4),
                ..all.clone()
            },
        ),
        (
            "status class 0",
            RollupFilter {
                status_class: Some(0),
                ..all.clone()
            },
        ),
        (
            "hours 22 to 27",
            RollupFilter {
                from_ms: base + 22 * HOUR_MS,
                to_ms: base + 27 * HOUR_MS,
                ..all.clone()
            },
        ),
        (
            "team a, gpt-4o, class 2, route r1, from hour 21",
            RollupFilter {
                from_ms: base + 21 * HOUR_MS,
                to_ms: base + 2 * DAY_MS,
                team_ids: Some(vec![team_a.id]),
                key_id: None,
                route_id: Some(r1.id),
                model: Some("gpt-4o".to_owned()),
                status_class: Some(2),
            },
        ),
        (
            "key a1 and class 5",
            RollupFilter {
                key_id: Some(a1.id),
                status_class: Some(5),
                ..all.clone()
            },
        ),
        (
            "a key of another team",
            RollupFilter {
                team_ids: Some(vec![team_b.id]),
                key_id: Some(a1.id),
                ..all.clone()
            },
        ),
    ];
    for (name, filter) in &filters {
        for grouping in GROUPINGS {
            for order in ORDERS {
                for limit in [1_000, 2] {
                    let want = expected_aggregates(&stored, filter, grouping, order, limit);
                    let got = store
                        .aggregate_usage(filter, grouping, order, limit)
                        .await
                        .expect("aggregate_usage");
                    assert_eq!(
                        got, want,
                        "aggregate_usage with {name}, {grouping:?}, {order:?}, limit {limit}"
                    );
                }
            }
        }
    }

    // Sanity of the expectations themselves: the story hits what it means to test.
    let total = expected_aggregates(&stored, &all, Grouping::Total, AggregateOrder::Bucket, 1);
    assert_eq!(total.len(), 1);
    assert_eq!(total[0].calls, 150);
    assert_eq!(
        total[0].latency_hist.iter().sum::<i64>(),
        150,
        "the histogram counts every call"
    );
    assert!(total[0].latency_hist.iter().filter(|c| **c > 0).count() >= 5);
    let teams = expected_aggregates(&stored, &all, Grouping::Team, AggregateOrder::Bucket, 10);
    assert_eq!(
        teams.iter().map(|t| t.bucket).collect::<Vec<_>>(),
        vec![0, team_a.id, team_b.id]
    );
    let models = store
        .aggregate_usage(&all, Grouping::Model, AggregateOrder::Bucket, 10)
        .await
        .expect("aggregate_usage");
    assert_eq!(
        models.iter().map(|m| m.label.as_str()).collect::<Vec<_>>(),
        vec!["", "Zeta-1", "claude-3", "gpt-4o"],
        "models in byte order"
    );
    let classes = store
        .aggregate_usage(&all, Grouping::StatusClass, AggregateOrder::Bucket, 10)
        .await
        .expect("aggregate_usage");
    assert_eq!(
        classes.iter().map(|c| c.bucket).collect::<Vec<_>>(),
        vec![0, 2, 3, 4, 5]
    );
    let by_day = store
        .aggregate_usage(&all, Grouping::Day, AggregateOrder::Bucket, 10)
        .await
        .expect("aggregate_usage");
    assert_eq!(
        by_day.iter().map(|d| d.bucket).collect::<Vec<_>>(),
        vec![base, base + DAY_MS],
        "days start at UTC midnight"
    );

    // Nothing to see: an empty team list, an empty range, a range with no roll-ups, limit 0.
    let empty_teams = RollupFilter {
        team_ids: Some(Vec::new()),
        ..all.clone()
    };
    let nothing = [
        (empty_teams, "an empty team list"),
        (
            RollupFilter {
                to_ms: base,
                ..all.clone()
            },
            "an empty range",
        ),
        (
            RollupFilter {
                from_ms: base + 3 * DAY_MS,
                to_ms: base + 4 * DAY_MS,
                ..all.clone()
            },
            "a range without usage",
        ),
    ];
    for (filter, what) in &nothing {
        for grouping in GROUPINGS {
            let got = store
                .aggregate_usage(filter, grouping, AggregateOrder::Bucket, 10)
                .await
                .expect("aggregate_usage");
            assert!(got.is_empty(), "{what}, {grouping:?}: {got:?}");
        }
    }
    assert!(
        store
            .aggregate_usage(&all, Grouping::Hour, AggregateOrder::Bucket, 0)
            .await
            .expect("aggregate_usage")
            .is_empty(),
        "limit 0"
    );
}

/// Checks `aggregate_usage` against the events for every grouping, order and two limits.
async fn assert_aggregates(
    store: &dyn Store,
    stored: &[UsageEvent],
    filters: &[(&str, RollupFilter)],
) {
    for (name, filter) in filters {
        for grouping in GROUPINGS {
            for order in ORDERS {
                for limit in [1_000, 2] {
                    let want = expected_aggregates(stored, filter, grouping, order, limit);
                    let got = store
                        .aggregate_usage(filter, grouping, order, limit)
                        .await
                        .expect("aggregate_usage");
                    assert_eq!(
                        got, want,
                        "aggregate_usage with {name}, {grouping:?}, {order:?}, limit {limit}"
                    );
                }
            }
        }
    }
}

/// Ranges holding whole UTC days (read from the daily roll-ups) and hours around them (read from
/// the hourly ones) sum exactly what the events add up to, wherever they start and end; events
/// written in several batches, one of them twice, land in both grains once.
pub async fn aggregates_over_days_match_the_events(store: &dyn Store) {
    let team_a = team(store).await;
    let team_b = team(store).await;
    let a1 = key(store, team_a.id).await;
    let b1 = key(store, team_b.id).await;
    let r1 = route(store, Some(team_a.id)).await;
    let r2 = route(store, None).await;
    let keys = [&a1, &b1];
    let base = DAYS_BASE;
    // One call every 37 minutes from 05:00 on the first day: six days and some.
    let mut events = story_events(base, 240, &keys, [r1.id, r2.id]);
    for (n, e) in (0_i64..).zip(events.iter_mut()) {
        e.ts_ms = base + 5 * HOUR_MS + n * 37 * 60_000;
    }
    let mut written = 0;
    for batch in events[..230].chunks(70) {
        written += store.write_usage(batch).await.expect("write_usage");
    }
    assert_eq!(
        store
            .write_usage(&events[225..])
            .await
            .expect("write_usage"),
        10,
        "of a batch of five stored events and ten new ones, the new ones count"
    );
    written += 10;
    assert_eq!(written, 240);
    assert_eq!(
        store
            .write_usage(&events[60..90])
            .await
            .expect("write_usage"),
        0,
        "a batch written again counts nothing new"
    );
    let stored: Vec<UsageEvent> = events.iter().map(|e| attributed(e, &keys)).collect();
    let days: HashSet<i64> = stored
        .iter()
        .map(|e| e.ts_ms - e.ts_ms.rem_euclid(DAY_MS))
        .collect();
    assert_eq!(days.len(), 7, "the story means to span seven days");

    // From 03:00 on the second day to 17:00 on the fifth: hours, three whole days, hours.
    let mid_days = RollupFilter {
        from_ms: base + DAY_MS + 3 * HOUR_MS,
        to_ms: base + 4 * DAY_MS + 17 * HOUR_MS,
        ..RollupFilter::default()
    };
    let filters = vec![
        ("mid-day to mid-day", mid_days.clone()),
        (
            "everything",
            RollupFilter {
                from_ms: base - DAY_MS,
                to_ms: base + 9 * DAY_MS,
                ..RollupFilter::default()
            },
        ),
        (
            "whole days only",
            RollupFilter {
                from_ms: base + DAY_MS,
                to_ms: base + 4 * DAY_MS,
                ..RollupFilter::default()
            },
        ),
        (
            "one whole day",
            RollupFilter {
                from_ms: base + 2 * DAY_MS,
                to_ms: base + 3 * DAY_MS,
                ..RollupFilter::default()
            },
        ),
        (
            "midnight to mid-day",
            RollupFilter {
                from_ms: base + DAY_MS,
                to_ms: base + 3 * DAY_MS + 9 * HOUR_MS,
                ..RollupFilter::default()
            },
        ),
        (
            "mid-day to midnight",
            RollupFilter {
                from_ms: base + 23 * HOUR_MS,
                to_ms: base + 5 * DAY_MS,
                ..RollupFilter::default()
            },
        ),
        (
            "off the hour at both ends",
            RollupFilter {
                from_ms: base + DAY_MS + 3 * HOUR_MS + 1_234,
                to_ms: base + 4 * DAY_MS + 17 * HOUR_MS - 1,
                ..RollupFilter::default()
            },
        ),
        (
            "across one midnight, no whole day",
            RollupFilter {
                from_ms: base + DAY_MS + 20 * HOUR_MS,
                to_ms: base + 2 * DAY_MS + 23 * HOUR_MS,
                ..RollupFilter::default()
            },
        ),
        (
            "team a, mid-day",
            RollupFilter {
                team_ids: Some(vec![team_a.id]),
                ..mid_days.clone()
            },
        ),
        (
            "unattributed and team b, mid-day",
            RollupFilter {
                team_ids: Some(vec![0, team_b.id]),
                ..mid_days.clone()
            },
        ),
        (
            "key b1 and class 2, mid-day",
            RollupFilter {
                key_id: Some(b1.id),
                status_class: Some(2),
                ..mid_days.clone()
            },
        ),
        (
            "no route, mid-day",
            RollupFilter {
                route_id: Some(0),
                ..mid_days.clone()
            },
        ),
        (
            "model claude-3, mid-day",
            RollupFilter {
                model: Some("claude-3".to_owned()),
                ..mid_days.clone()
            },
        ),
    ];
    assert_aggregates(store, &stored, &filters).await;

    // Days: the partial first and last ones hold only their hours inside the range.
    let by_day = store
        .aggregate_usage(&mid_days, Grouping::Day, AggregateOrder::Bucket, 100)
        .await
        .expect("aggregate_usage");
    assert_eq!(
        by_day.iter().map(|d| d.bucket).collect::<Vec<_>>(),
        (1..=4).map(|d| base + d * DAY_MS).collect::<Vec<_>>(),
        "one bucket per UTC day"
    );
    let in_range = |from: i64, to: i64| {
        i64::try_from(
            stored
                .iter()
                .filter(|e| hour_of(e) >= from && hour_of(e) < to)
                .count(),
        )
        .expect("fits")
    };
    let calls: Vec<i64> = by_day.iter().map(|d| d.calls).collect();
    assert_eq!(
        calls,
        vec![
            in_range(mid_days.from_ms, base + 2 * DAY_MS),
            in_range(base + 2 * DAY_MS, base + 3 * DAY_MS),
            in_range(base + 3 * DAY_MS, base + 4 * DAY_MS),
            in_range(base + 4 * DAY_MS, mid_days.to_ms),
        ]
    );
    assert!(
        calls[0] < calls[1] && calls[3] < calls[2],
        "the edge days are partial: {calls:?}"
    );
}

/// Whether a stored event matches `f`, decided in Rust.
fn event_matches(f: &EventFilter, e: &UsageEvent) -> bool {
    let text_hit = |needle: &str| {
        let needle = needle.to_lowercase();
        [
            Some(e.path.as_str()),
            e.error.as_deref(),
            e.user_agent.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|field| field.to_lowercase().contains(&needle))
    };
    f.from_ms.is_none_or(|t| e.ts_ms >= t)
        && f.to_ms.is_none_or(|t| e.ts_ms < t)
        && f.team_ids
            .as_ref()
            .is_none_or(|t| e.team_id.is_some_and(|id| t.contains(&id)))
        && f.key_id.is_none_or(|k| e.key_id == Some(k))
        && f.route_id.is_none_or(|r| e.route_id == Some(r))
        && f.model.as_ref().is_none_or(|m| e.model.as_ref() == Some(m))
        && f.status.is_none_or(|s| e.status == s)
        && f.status_class.is_none_or(|c| class_of(e.status) == c)
        && f.text.as_deref().is_none_or(text_hit)
}

/// Every page of `filter`, `page` at a time, following the cursor of each last row.
pub(super) async fn walk(store: &dyn Store, filter: &EventFilter, page: i64) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    let mut after: Option<EventCursor> = None;
    loop {
        let got = store
            .search_usage(filter, after, page)
            .await
            .expect("search_usage");
        assert!(
            i64::try_from(got.len()).expect("fits") <= page,
            "a page longer than its limit"
        );
        let full = i64::try_from(got.len()).expect("fits") == page;
        if let Some(last) = got.last() {
            after = Some(EventCursor {
                ts_ms: last.event.ts_ms,
                id: last.id,
            });
        }
        all.extend(got);
        assert!(all.len() <= 10_000, "search_usage does not move on");
        if !full {
            return all;
        }
    }
}

/// Row ids in `(ts, id)` newest-first order of the events matching `filter`, from the
/// generated events and the row ids the full walk revealed.
pub(super) fn expected_ids(
    stored: &[UsageEvent],
    ids: &HashMap<Uuid, i64>,
    filter: &EventFilter,
) -> Vec<i64> {
    let mut hits: Vec<(i64, i64)> = stored
        .iter()
        .filter(|e| event_matches(filter, e))
        .map(|e| (e.ts_ms, ids[&e.event_id]))
        .collect();
    hits.sort_unstable_by(|a, b| b.cmp(a));
    hits.into_iter().map(|(_, id)| id).collect()
}

/// Walking `search_usage` page by page gives every matching event once, newest first, for every
/// filter; text matches `%`, `_` and `\` literally and ignores case; `usage_event` finds by id.
pub async fn search_walks_every_page_in_order(store: &dyn Store) {
    let team_a = team(store).await;
    let team_b = team(store).await;
    let a1 = key(store, team_a.id).await;
    let b1 = key(store, team_b.id).await;
    let b2 = key(store, team_b.id).await;
    let r1 = route(store, Some(team_b.id)).await;
    let r2 = route(store, None).await;
    let keys = [&a1, &b1, &b2];
    // 1986-02-01: after the aggregates' days.
    let base = AGGREGATE_BASE + 31 * DAY_MS;
    let events = story_events(base, 90, &keys, [r1.id, r2.id]);
    assert_eq!(store.write_usage(&events).await.expect("write_usage"), 90);
    let stored: Vec<UsageEvent> = events.iter().map(|e| attributed(e, &keys)).collect();

    let range = EventFilter {
        from_ms: Some(base),
        to_ms: Some(base + 2 * DAY_MS),
        ..EventFilter::default()
    };
    let everything = walk(store, &range, 7).await;
    assert_eq!(everything.len(), 90, "the whole range, page by page");
    assert!(
        everything
            .windows(2)
            .all(|w| (w[0].event.ts_ms, w[0].id) > (w[1].event.ts_ms, w[1].id)),
        "not strictly newest first by (ts, id)"
    );
    assert!(
        everything
            .windows(2)
            .any(|w| w[0].event.ts_ms == w[1].event.ts_ms),
        "the story means to have ties on ts"
    );
    let by_event: HashMap<Uuid, &StoredEvent> =
        everything.iter().map(|s| (s.event.event_id, s)).collect();
    assert_eq!(by_event.len(), 90, "an event came back twice");
    for e in &stored {
        let found = by_event
            .get(&e.event_id)
            .unwrap_or_else(|| panic!("event {} is missing", e.event_id));
        assert_eq!(&found.event, e, "an event did not round-trip");
    }
    let ids: HashMap<Uuid, i64> = everything
        .iter()
        .map(|s| (s.event.event_id, s.id))
        .collect();

    let filters = vec![
        ("the range", range.clone()),
        (
            "team b",
            EventFilter {
                team_ids: Some(vec![team_b.id]),
                ..range.clone()
            },
        ),
        (
            "both teams",
            EventFilter {
                team_ids: Some(vec![team_a.id, team_b.id]),
                ..range.clone()
            },
        ),
        (
            "key b2",
            EventFilter {
                key_id: Some(b2.id),
                ..range.clone()
            },
        ),
        (
            "key b2, no range",
            EventFilter {
                key_id: Some(b2.id),
                ..EventFilter::default()
            },
        ),
        (
            "route r1",
            EventFilter {
                route_id: Some(r1.id),
                ..range.clone()
            },
        ),
        (
            "model claude-3",
            EventFilter {
                model: Some("claude-3".to_owned()),
                ..range.clone()
            },
        ),
        (
            "status 404",
            EventFilter {
                status: Some(404),
                ..range.clone()
            },
        ),
        (
            "status class 5",
            EventFilter {
                status_class: Some(5),
                ..range.clone()
            },
        ),
        (
            "status class 0",
            EventFilter {
                status_class: Some(0),
                ..range.clone()
            },
        ),
        (
            "a literal `0%_O`, any case",
            EventFilter {
                text: Some("0%_O".to_owned()),
                ..range.clone()
            },
        ),
        (
            "a literal `_`",
            EventFilter {
                text: Some("_".to_owned()),
                ..range.clone()
            },
        ),
        (
            "a literal backslash",
            EventFilter {
                text: Some("a\\b".to_owned()),
                ..range.clone()
            },
        ),
        (
            "the error message, any case",
            EventFilter {
                text: Some("timeout".to_owned()),
                ..range.clone()
            },
        ),
        (
            "the user agent, any case",
            EventFilter {
                text: Some("STORY-agent".to_owned()),
                ..range.clone()
            },
        ),
        (
            "team b, route r1, class 2, text, from hour 22",
            EventFilter {
                from_ms: Some(base + 22 * HOUR_MS),
                to_ms: Some(base + 2 * DAY_MS),
                team_ids: Some(vec![team_b.id]),
                key_id: None,
                route_id: Some(r1.id),
                model: None,
                status: None,
                status_class: Some(2),
                text: Some("CHAT".to_owned()),
            },
        ),
        (
            "key a1 and model gpt-4o and status 200",
            EventFilter {
                key_id: Some(a1.id),
                model: Some("gpt-4o".to_owned()),
                status: Some(200),
                ..range.clone()
            },
        ),
    ];
    for (name, filter) in &filters {
        let want = expected_ids(&stored, &ids, filter);
        assert!(
            !want.is_empty(),
            "{name}: the story means to match something"
        );
        for page in [1, 4, 100] {
            let got: Vec<i64> = walk(store, filter, page)
                .await
                .iter()
                .map(|s| s.id)
                .collect();
            assert_eq!(got, want, "search_usage with {name}, pages of {page}");
        }
    }
    let literal = expected_ids(&stored, &ids, &filters[10].1);
    assert_eq!(
        literal.len(),
        9,
        "`0%_O` matches only the 9 `50%_off` paths"
    );

    // Nothing: an empty team list, a text nobody has, limit 0.
    let nothing = [
        EventFilter {
            team_ids: Some(Vec::new()),
            ..range.clone()
        },
        EventFilter {
            text: Some("%nowhere%".to_owned()),
            ..range.clone()
        },
    ];
    for filter in &nothing {
        assert!(
            store
                .search_usage(filter, None, 100)
                .await
                .expect("search_usage")
                .is_empty(),
            "{filter:?} matched"
        );
    }
    assert!(
        store
            .search_usage(&range, None, 0)
            .await
            .expect("search_usage")
            .is_empty()
    );

    for found in everything.iter().step_by(11) {
        assert_eq!(
            store.usage_event(found.id).await.expect("usage_event"),
            Some(found.clone())
        );
    }
    assert_eq!(
        store.usage_event(i64::MAX).await.expect("usage_event"),
        None
    );
}

/// `delete_usage_before` deletes exactly the older events and keeps roll-ups, `trim_usage` keeps
/// exactly the newest `max_rows`, `delete_rollups_before` deletes exactly the hourly roll-up rows
/// before the cut and the daily ones of the whole days before it.
pub async fn retention_deletes_exactly_what_it_should(store: &dyn Store) {
    let team = team(store).await;
    let k = key(store, team.id).await;
    let r = route(store, Some(team.id)).await;
    let keys = [&k];
    // From 20:00 on 1983-12-31: older than everything else in the store.
    let base = RETENTION_BASE - DAY_MS;
    let mut events = story_events(base, 40, &keys, [r.id, r.id]);
    // Three lone calls on the three days before: roll-ups spanning several days.
    for day in 1..=3 {
        let mut e = UsageEvent::new(base - day * DAY_MS + day * HOUR_MS, "GET", "/old", 200);
        e.key_id = Some(k.id);
        e.team_id = Some(team.id);
        events.push(e);
    }
    let stored: Vec<UsageEvent> = events.iter().map(|e| attributed(e, &keys)).collect();
    let count = store.count_usage().await.expect("count_usage");
    assert_eq!(store.write_usage(&events).await.expect("write_usage"), 43);
    assert_eq!(store.count_usage().await.expect("count_usage"), count + 43);
    let range = EventFilter {
        from_ms: Some(base),
        to_ms: Some(base + 2 * DAY_MS),
        ..EventFilter::default()
    };
    let ids: HashMap<Uuid, i64> = walk(store, &range, 50)
        .await
        .iter()
        .map(|s| (s.event.event_id, s.id))
        .collect();
    assert_eq!(ids.len(), 40);
    let hours = RollupFilter {
        from_ms: base,
        to_ms: base + 2 * DAY_MS,
        ..RollupFilter::default()
    };
    let hourly_before = store
        .aggregate_usage(&hours, Grouping::Hour, AggregateOrder::Bucket, 100)
        .await
        .expect("aggregate_usage");
    assert_eq!(
        hourly_before,
        expected_aggregates(&stored, &hours, Grouping::Hour, AggregateOrder::Bucket, 100)
    );

    // Just before the 13th time of the story (two events a time, 11 minutes apart): its first
    // 24 events and the three older ones go.
    let cut = base + 20 * HOUR_MS + 12 * 660_000 - 1;
    let older = stored.iter().filter(|e| e.ts_ms < cut).count();
    assert_eq!(older, 27);
    let deleted = store
        .delete_usage_before(cut, 5)
        .await
        .expect("delete_usage_before");
    assert_eq!(deleted, 27, "delete_usage_before counts what it deleted");
    assert_eq!(
        store.count_usage().await.expect("count_usage"),
        count + 43 - 27
    );
    let left: Vec<i64> = walk(store, &range, 50).await.iter().map(|s| s.id).collect();
    let kept: Vec<UsageEvent> = stored.iter().filter(|e| e.ts_ms >= cut).cloned().collect();
    assert_eq!(left, expected_ids(&kept, &ids, &range));
    assert_eq!(
        store
            .aggregate_usage(&hours, Grouping::Hour, AggregateOrder::Bucket, 100)
            .await
            .expect("aggregate_usage"),
        hourly_before,
        "deleting raw events changed the roll-ups"
    );
    assert_eq!(
        store
            .delete_usage_before(cut, 5)
            .await
            .expect("delete_usage_before again"),
        0
    );

    // Trim: the 16 left are the oldest in the store; keep all but the 7 oldest.
    let total = store.count_usage().await.expect("count_usage");
    assert_eq!(
        store
            .trim_usage(total, 3)
            .await
            .expect("trim_usage to the count"),
        0
    );
    assert_eq!(
        store
            .trim_usage(total + 100, 3)
            .await
            .expect("trim_usage above the count"),
        0
    );
    assert_eq!(
        store.trim_usage(total - 7, 3).await.expect("trim_usage"),
        7,
        "trim_usage counts what it deleted"
    );
    assert_eq!(store.count_usage().await.expect("count_usage"), total - 7);
    let mut oldest_first = expected_ids(&kept, &ids, &range);
    oldest_first.reverse();
    let mut survivors: Vec<i64> = oldest_first[7..].to_vec();
    survivors.reverse();
    let left: Vec<i64> = walk(store, &range, 50).await.iter().map(|s| s.id).collect();
    assert_eq!(
        left, survivors,
        "trim_usage kept other than the newest rows"
    );

    // Roll-ups: hourly rows of hours before the cut go, and daily rows of the whole days before
    // it (not the cut's own day, 22:00 into it); the others stay as they were.
    let rollup_cut = base + 22 * HOUR_MS;
    let day_cut = base;
    let day_of = |e: &UsageEvent| e.ts_ms - e.ts_ms.rem_euclid(DAY_MS);
    let dimensions = |start: i64, e: &UsageEvent| {
        (
            start,
            e.team_id.unwrap_or(0),
            e.key_id.unwrap_or(0),
            e.route_id.unwrap_or(0),
            e.model.clone().unwrap_or_default(),
            class_of(e.status),
        )
    };
    let hourly_rows: HashSet<_> = stored
        .iter()
        .filter(|e| hour_of(e) < rollup_cut)
        .map(|e| dimensions(hour_of(e), e))
        .collect();
    let daily_rows: HashSet<_> = stored
        .iter()
        .filter(|e| day_of(e) < day_cut)
        .map(|e| dimensions(day_of(e), e))
        .collect();
    assert!(hourly_rows.len() > 6, "roll-up rows on four days");
    assert_eq!(
        daily_rows.len(),
        3,
        "one daily row on each of the three days before"
    );
    let whole_days = RollupFilter {
        from_ms: base - 3 * DAY_MS,
        to_ms: base + 2 * DAY_MS,
        ..RollupFilter::default()
    };
    let daily_before = store
        .aggregate_usage(&whole_days, Grouping::Day, AggregateOrder::Bucket, 100)
        .await
        .expect("aggregate_usage");
    assert_eq!(
        daily_before,
        expected_aggregates(
            &stored,
            &whole_days,
            Grouping::Day,
            AggregateOrder::Bucket,
            100
        )
    );
    assert_eq!(
        store
            .delete_rollups_before(rollup_cut)
            .await
            .expect("delete_rollups_before"),
        u64::try_from(hourly_rows.len() + daily_rows.len()).expect("fits"),
        "delete_rollups_before counts hourly and daily rows"
    );
    let before_cut = RollupFilter {
        from_ms: base - 3 * DAY_MS,
        to_ms: rollup_cut - rollup_cut.rem_euclid(HOUR_MS),
        ..RollupFilter::default()
    };
    assert_eq!(
        store
            .latency_sketches(&before_cut, Grouping::Hour, None)
            .await
            .expect("latency_sketches"),
        Vec::new(),
        "the hours' latency sketches went with their roll-ups"
    );
    let later_days: Vec<UsageAggregate> = daily_before
        .iter()
        .filter(|d| d.bucket >= day_cut)
        .cloned()
        .collect();
    assert_eq!(later_days.len(), 1, "the story's own day");
    assert_eq!(
        store
            .aggregate_usage(&whole_days, Grouping::Day, AggregateOrder::Bucket, 100)
            .await
            .expect("aggregate_usage"),
        later_days,
        "the cut's own day keeps its daily row, hours before the cut included"
    );
    let later: Vec<UsageAggregate> = hourly_before
        .iter()
        .filter(|h| h.bucket >= rollup_cut)
        .cloned()
        .collect();
    assert!(!later.is_empty());
    assert_eq!(
        store
            .aggregate_usage(&hours, Grouping::Hour, AggregateOrder::Bucket, 100)
            .await
            .expect("aggregate_usage"),
        later
    );
    assert_eq!(
        store
            .delete_rollups_before(rollup_cut)
            .await
            .expect("delete_rollups_before again"),
        0
    );
}
