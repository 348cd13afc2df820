//! Migration 0014 on roll-ups written before it: the summary rows it adds sum them exactly, and
//! their percentiles are marked coarse (empty sketches). A backend's test migrates an empty
//! database to 0013, runs [`OLD_ROLLUPS`], migrates the rest, then calls
//! [`summaries_sum_the_old_rollups`].

use std::fmt::Write as _;
use std::sync::LazyLock;

use tollgate_core::time::{DAY_MS, HOUR_MS};

use crate::{AggregateOrder, Grouping, RollupFilter, Store, UsageAggregate};

/// The first hour of the old roll-ups (2024-03-01 UTC, a whole day later than nothing).
const BASE: i64 = 1_709_251_200_000;

/// One old hourly roll-up row: (hour offset, team, key, route, model, status class, calls).
type OldRow = (i64, i64, i64, i64, &'static str, i16, i64);

/// Two teams, three keys, two routes, two models and no model, four status classes (0 among
/// them), over hours of two UTC days.
const ROWS: [OldRow; 12] = [
    (1, 1, 11, 21, "gpt-4o", 2, 5),
    (1, 1, 11, 21, "gpt-4o", 5, 2),
    (1, 1, 12, 21, "o3-mini", 2, 3),
    (2, 1, 11, 22, "", 0, 4),
    (2, 2, 13, 21, "gpt-4o", 2, 7),
    (5, 2, 13, 22, "", 4, 1),
    (23, 1, 12, 22, "o3-mini", 2, 6),
    (25, 1, 11, 21, "gpt-4o", 2, 8),
    (25, 2, 13, 21, "gpt-4o", 5, 3),
    (26, 1, 12, 21, "gpt-4o", 0, 2),
    (30, 2, 13, 22, "o3-mini", 2, 9),
    (47, 1, 11, 22, "", 4, 1),
];

/// The statements writing [`ROWS`] into `usage_hourly` and, summed per day, `usage_daily`, as
/// migration 0013 left them (portable SQL: no placeholders).
pub static OLD_ROLLUPS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let columns = "team_id, key_id, route_id, model, status_class, calls, errors, latency_sum_us, \
                   h05, total_tokens, cost_usd, unpriced_calls";
    let values = |rows: &[(i64, OldRow)]| {
        let mut v = Vec::new();
        for (start, (_, team, key, route, model, class, calls)) in rows {
            let errors = if *class >= 4 { *calls } else { 0 };
            v.push(format!(
                "({start}, {team}, {key}, {route}, '{model}', {class}, {calls}, {errors}, {}, \
                 {calls}, {}, {}.5, {})",
                calls * 40_000,
                calls * 100,
                calls,
                calls % 2
            ));
        }
        v.join(", ")
    };
    let hourly: Vec<(i64, OldRow)> = ROWS.iter().map(|r| (BASE + r.0 * HOUR_MS, *r)).collect();
    // Daily rows: the hourly ones of the same dimensions summed per day.
    let mut daily: Vec<(i64, OldRow)> = Vec::new();
    for (start, row) in &hourly {
        let day = start - start.rem_euclid(DAY_MS);
        match daily.iter_mut().find(|(d, r)| {
            *d == day && (r.1, r.2, r.3, r.4, r.5) == (row.1, row.2, row.3, row.4, row.5)
        }) {
            Some((_, r)) => r.6 += row.6,
            None => daily.push((day, *row)),
        }
    }
    let mut statements = Vec::new();
    let mut sql = format!("INSERT INTO usage_hourly (hour, {columns}) VALUES ");
    let _ = write!(sql, "{}", values(&hourly));
    statements.push(sql);
    let mut sql = format!("INSERT INTO usage_daily (day, {columns}) VALUES ");
    let _ = write!(sql, "{}", values(&daily));
    statements.push(sql);
    statements
});

/// The groups of `filter` by `grouping` from the roll-ups themselves: the answers for each status
/// class (which only the roll-ups give) added up.
async fn from_rollups(
    store: &dyn Store,
    filter: &RollupFilter,
    grouping: Grouping,
) -> Vec<UsageAggregate> {
    let mut groups: Vec<UsageAggregate> = Vec::new();
    for class in [0, 2, 3, 4, 5] {
        let by_class = RollupFilter {
            status_class: Some(class),
            ..filter.clone()
        };
        for a in store
            .aggregate_usage(&by_class, grouping, AggregateOrder::Bucket, 1_000)
            .await
            .expect("aggregate_usage by status class")
        {
            match groups
                .iter_mut()
                .find(|g| (g.bucket, &g.label) == (a.bucket, &a.label))
            {
                Some(g) => {
                    g.calls += a.calls;
                    g.errors += a.errors;
                    g.unknown_calls += a.unknown_calls;
                    g.latency_sum_us += a.latency_sum_us;
                    g.total_tokens += a.total_tokens;
                    g.cost_usd += a.cost_usd;
                    g.unpriced_calls += a.unpriced_calls;
                    for (h, n) in g.latency_hist.iter_mut().zip(a.latency_hist) {
                        *h += n;
                    }
                }
                None => groups.push(a),
            }
        }
    }
    groups.sort_by(|a, b| (a.bucket, &a.label).cmp(&(b.bucket, &b.label)));
    groups
}

/// After migration 0014, every grouping the summary rows answer (with no filter and with one
/// team, key, route or model, over whole days and over hours around them) equals the roll-ups',
/// and the sketches of those calls are empty (their percentiles are the coarse ones).
pub async fn summaries_sum_the_old_rollups(store: &dyn Store) {
    let ranges = [
        ("two whole days", BASE, BASE + 2 * DAY_MS),
        (
            "hours around a day",
            BASE + 2 * HOUR_MS,
            BASE + 46 * HOUR_MS,
        ),
    ];
    let filters = |from_ms, to_ms| {
        let all = RollupFilter {
            from_ms,
            to_ms,
            ..RollupFilter::default()
        };
        [
            ("no filter", all.clone()),
            (
                "team 2",
                RollupFilter {
                    team_ids: Some(vec![2]),
                    ..all.clone()
                },
            ),
            (
                "key 11",
                RollupFilter {
                    key_id: Some(11),
                    ..all.clone()
                },
            ),
            (
                "route 22",
                RollupFilter {
                    route_id: Some(22),
                    ..all.clone()
                },
            ),
            (
                "model gpt-4o",
                RollupFilter {
                    model: Some("gpt-4o".into()),
                    ..all.clone()
                },
            ),
        ]
    };
    let groupings = [
        Grouping::Total,
        Grouping::Hour,
        Grouping::Day,
        Grouping::Team,
        Grouping::Key,
        Grouping::Route,
        Grouping::Model,
    ];
    let mut compared = 0;
    for (range, from_ms, to_ms) in ranges {
        for (name, filter) in filters(from_ms, to_ms) {
            for grouping in groupings {
                let want = from_rollups(store, &filter, grouping).await;
                let got = store
                    .aggregate_usage(&filter, grouping, AggregateOrder::Bucket, 1_000)
                    .await
                    .expect("aggregate_usage");
                let what = format!("{range}, {name}, by {grouping:?}");
                assert_eq!(got.len(), want.len(), "{what}: {got:?} against {want:?}");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(
                        (g.bucket, &g.label, g.calls, g.errors, g.unknown_calls),
                        (w.bucket, &w.label, w.calls, w.errors, w.unknown_calls),
                        "{what}"
                    );
                    assert_eq!(
                        (
                            g.latency_sum_us,
                            g.total_tokens,
                            g.unpriced_calls,
                            g.latency_hist
                        ),
                        (
                            w.latency_sum_us,
                            w.total_tokens,
                            w.unpriced_calls,
                            w.latency_hist
                        ),
                        "{what}"
                    );
                    assert!((g.cost_usd - w.cost_usd).abs() < 1e-9, "{what}");
                }
                compared += want.len();
                // Their calls have no sketch: empty ones, so the answer keeps the coarse
                // percentiles.
                for group in store
                    .latency_sketches(&filter, grouping, None)
                    .await
                    .expect("latency_sketches")
                {
                    assert_eq!(group.sketches.total.count(), 0, "{what}");
                }
            }
        }
    }
    assert!(compared > 100, "only {compared} groups compared");
}
