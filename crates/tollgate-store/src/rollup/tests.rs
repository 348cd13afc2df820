//! Unit tests of the roll-up sums, summary rows and sketch groups.

use super::*;

#[test]
fn ranges_split_into_whole_days_and_hourly_edges() {
    let d = DAY_MS;
    let h = 3_600_000;
    assert_eq!(split_range(d + 5 * h, 2 * d), None, "no whole day");
    let parts = split_range(d + 5 * h, 4 * d + 2 * h).unwrap();
    let shape: Vec<_> = parts
        .iter()
        .map(|p| (p.grain, p.from_ms, p.to_ms))
        .collect();
    assert_eq!(
        shape,
        vec![
            (Grain::Hour, d + 5 * h, 2 * d),
            (Grain::Day, 2 * d, 4 * d),
            (Grain::Hour, 4 * d, 4 * d + 2 * h)
        ]
    );
    let whole = split_range(d, 3 * d).unwrap();
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].grain, Grain::Day);
}

fn event(latency_us: i64, upstream_us: Option<i64>) -> UsageEvent {
    let mut e = UsageEvent::new(0, "GET", "/", 200);
    e.latency_us = latency_us;
    e.upstream_latency_us = upstream_us;
    // The answer's last byte a little after its first.
    e.upstream_last_byte_us = upstream_us.map(|us| us + 500);
    e
}

#[test]
fn every_call_counts_in_its_detailed_row_and_four_summary_rows() {
    let h = 3_600_000;
    let mut batch = BatchSketches::default();
    let mut rollups: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
    let calls = [
        (DAY_MS + h, (7, 3, 2), "gpt-4o", event(10_000, Some(9_000))),
        (DAY_MS + 2 * h, (7, 4, 2), "", event(20_000, None)),
    ];
    for (hour, (team_id, key_id, route_id), model, e) in &calls {
        let key = RollupKey {
            start_ms: *hour,
            team_id: *team_id,
            key_id: *key_id,
            route_id: *route_id,
            model: (*model).to_owned(),
            status_class: if *key_id == 4 { 0 } else { 2 },
        };
        rollups.entry(key).or_default().add(e);
    }
    for (hour, ids, model, e) in &calls {
        batch.add(*hour, *ids, model, e);
    }
    let (hourly, daily) = batch.into_grains(&rollups);
    let find = |rows: &'_ [(LatencyKey<'_>, SummaryAddition)],
                (team_id, key_id),
                route_id,
                model: &str| {
        rows.iter()
            .filter(|(k, _)| {
                (k.team_id, k.key_id, k.route_id, k.model) == (team_id, key_id, route_id, model)
            })
            .map(|(_, s)| {
                (
                    s.sketches.total.count(),
                    s.sums.as_ref().map(|s| s.rollup.calls),
                )
            })
            .fold((0, None), |(n, c), (m, d)| {
                (n + m, d.map(|d| c.unwrap_or(0) + d).or(c))
            })
    };
    // Two hours, eight rows each: sixteen hourly rows. One day, where the two calls share
    // the team's and the route's rows, in the team and across teams: twelve daily rows.
    assert_eq!(hourly.len(), 16);
    assert_eq!(daily.len(), 12);
    assert!(
        daily
            .iter()
            .all(|(k, _)| k.start_ms == DAY_MS && (k.team_id == 7 || k.team_id == ALL))
    );
    assert_eq!(find(&daily, (ALL, ALL), ALL, ""), (2, Some(2)), "all teams");
    assert_eq!(
        find(&daily, (ALL, ALL), 2, ""),
        (2, Some(2)),
        "route 2 across teams"
    );
    assert_eq!(
        find(&daily, (ALL, ALL), MODEL_SUMMARY, "gpt-4o"),
        (1, Some(1)),
        "a model across teams"
    );
    // Each summary row has the sketches and the counts of its calls; a detailed row only
    // the sketches (its counts are the roll-up rows').
    assert_eq!(
        find(&daily, (7, ALL), ALL, ""),
        (2, Some(2)),
        "team summary"
    );
    assert_eq!(find(&daily, (7, 3), ALL, ""), (1, Some(1)), "key 3 summary");
    assert_eq!(find(&daily, (7, 4), ALL, ""), (1, Some(1)), "key 4 summary");
    assert_eq!(find(&daily, (7, ALL), 2, ""), (2, Some(2)), "route summary");
    assert_eq!(
        find(&daily, (7, ALL), MODEL_SUMMARY, "gpt-4o"),
        (1, Some(1)),
        "model summary"
    );
    assert_eq!(
        find(&daily, (7, ALL), MODEL_SUMMARY, ""),
        (1, Some(1)),
        "calls without a model"
    );
    assert_eq!(find(&daily, (7, 3), 2, "gpt-4o"), (1, None), "detailed");
    assert_eq!(find(&hourly, (7, ALL), ALL, ""), (2, Some(2)), "two hours");
    let team = daily
        .iter()
        .find(|(k, _)| k.team_id == 7 && k.key_id == ALL && k.route_id == ALL)
        .map(|(_, s)| s)
        .expect("the team's row");
    assert_eq!(
        team.sketches.upstream.count(),
        1,
        "only one call reached an upstream"
    );
    assert_eq!(team.sketches.upstream_last_byte.count(), 1);
    let sums = team.sums.as_ref().expect("the team's sums");
    assert_eq!(sums.rollup.latency_sum_us, 30_000);
    assert_eq!(sums.unknown_calls, 1, "key 4's call has status class 0");
    // Sorted by key, as every writer touches rows.
    assert!(hourly.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(daily.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn the_fewest_rows_answer_each_query() {
    let f = RollupFilter::default;
    let cases = [
        (f(), Grouping::Total, SketchRows::AllTeams),
        (f(), Grouping::Day, SketchRows::AllTeams),
        (f(), Grouping::Team, SketchRows::TeamSummaries),
        (f(), Grouping::Key, SketchRows::KeySummaries),
        (f(), Grouping::Route, SketchRows::RoutesAcrossTeams),
        (f(), Grouping::Model, SketchRows::ModelsAcrossTeams),
        (
            RollupFilter {
                team_ids: Some(vec![1, 2]),
                ..f()
            },
            Grouping::Route,
            SketchRows::RouteSummaries,
        ),
        (
            RollupFilter {
                key_id: Some(1),
                ..f()
            },
            Grouping::Hour,
            SketchRows::KeySummaries,
        ),
        (
            RollupFilter {
                key_id: Some(1),
                ..f()
            },
            Grouping::Model,
            SketchRows::Detailed,
        ),
        (
            RollupFilter {
                route_id: Some(1),
                model: Some("m".into()),
                ..f()
            },
            Grouping::Total,
            SketchRows::Detailed,
        ),
        (
            RollupFilter {
                team_ids: Some(vec![1]),
                model: Some("m".into()),
                ..f()
            },
            Grouping::Day,
            SketchRows::ModelSummaries,
        ),
    ];
    for (filter, grouping, rows) in cases {
        assert_eq!(
            SketchRows::for_query(&filter, grouping),
            rows,
            "{filter:?} by {grouping:?}"
        );
    }
    // A call's eight rows are one of each kind, in this order, and each kind's condition
    // names its number.
    let kinds: Vec<SketchRows> = LatencyKey::rows_of(0, 7, 3, 2, "m")
        .iter()
        .map(LatencyKey::rows)
        .collect();
    assert_eq!(
        kinds,
        [
            SketchRows::Detailed,
            SketchRows::TeamSummaries,
            SketchRows::KeySummaries,
            SketchRows::RouteSummaries,
            SketchRows::ModelSummaries,
            SketchRows::AllTeams,
            SketchRows::RoutesAcrossTeams,
            SketchRows::ModelsAcrossTeams,
        ]
    );
    for rows in kinds {
        assert_eq!(rows.condition(), format!("kind = {}", rows.kind()));
    }
}

#[test]
fn stored_runs_merge_into_their_groups_in_order() {
    let sketch = |latency_us| {
        let mut s = LatencySketches::default();
        s.add(&event(latency_us, Some(latency_us / 2)));
        [
            s.total.encode(),
            s.upstream.encode(),
            s.upstream_last_byte.encode(),
        ]
    };
    fn stored(blobs: &[Vec<u8>; 3]) -> StoredSketches<'_> {
        StoredSketches {
            total: &blobs[0],
            upstream: &blobs[1],
            upstream_last_byte: &blobs[2],
        }
    }
    let a = sketch(1_000);
    let b = sketch(900_000);
    let ab: [Vec<u8>; 3] = std::array::from_fn(|i| [a[i].clone(), b[i].clone()].concat());
    let mut by_model = SketchGroups::new(Grouping::Model);
    by_model.add(0, "z", stored(&ab)).expect("merged");
    by_model.add(0, "a", stored(&b)).expect("merged");
    by_model.add(0, "z", stored(&a)).expect("merged");
    let models = by_model.finish();
    let labels: Vec<&str> = models.iter().map(|g| g.label.as_str()).collect();
    assert_eq!(labels, ["a", "z"]);
    assert_eq!(models[1].sketches.total.count(), 3);
    assert_eq!(models[1].sketches.upstream.count(), 3);
    assert_eq!(models[1].sketches.upstream_last_byte.count(), 3);
    let mut by_day = SketchGroups::new(Grouping::Day);
    by_day.add(DAY_MS, "", stored(&ab)).expect("merged");
    by_day.add(0, "", stored(&b)).expect("merged");
    let days = by_day.finish();
    let buckets: Vec<i64> = days.iter().map(|g| g.bucket).collect();
    assert_eq!(buckets, [0, DAY_MS]);
    assert_eq!(days[1].sketches.total.count(), 2);
    let empty = [1, 0, 0, 0];
    for broken in [[&[9][..], &empty, &empty], [&empty, &empty, &[9][..]]] {
        let [total, upstream, upstream_last_byte] = broken;
        assert!(
            SketchGroups::new(Grouping::Total)
                .add(
                    0,
                    "",
                    StoredSketches {
                        total,
                        upstream,
                        upstream_last_byte
                    }
                )
                .is_err()
        );
    }
}

#[test]
fn groups_are_named_alike_in_sql_and_in_the_answers() {
    assert_eq!(group_sql(Grouping::StatusClass, Grain::Day), None);
    assert_eq!(
        group_sql(Grouping::Day, Grain::Hour),
        Some((
            format!("CAST(hour - hour % {DAY_MS} AS BIGINT)"),
            "CAST('' AS TEXT)"
        ))
    );
    assert_eq!(
        group_sql(Grouping::Model, Grain::Day),
        Some(("CAST(0 AS BIGINT)".to_owned(), "model"))
    );
}

#[test]
fn like_patterns_take_wildcards_literally() {
    assert_eq!(contains_pattern("100%_off\\"), "%100\\%\\_off\\\\%");
    assert_eq!(contains_pattern(""), "%%");
}

#[test]
fn batch_sums_match_counting_each_call_in_each_row() {
    let h = 3_600_000;
    let models = ["gpt-4o", "", "o3", "claude-sonnet-4"];
    let mut events = Vec::new();
    for i in 0..2_000_i64 {
        let mut e = event(
            1_000 + i * 7_919 % 5_000_000,
            (i % 3 != 0).then_some(i * 13 % 900_000),
        );
        e.ts_ms = DAY_MS + (i * 104_729) % (30 * h);
        e.status = [200, 404, 500, 0, 201][usize::try_from(i % 5).unwrap()];
        e.route_id = (i % 4 != 0).then_some(i % 3 + 1);
        e.model =
            Some(models[usize::try_from(i % 4).unwrap()].to_owned()).filter(|m| !m.is_empty());
        e.tokens.prompt = i;
        events.push(e);
    }
    let owner = |i: usize| {
        let key = i64::try_from(i % 6).unwrap();
        ((key > 0).then_some(key), (key > 0).then_some(key % 2 + 1))
    };

    // The reference: each call counted in its roll-up row and its eight sketch rows in turn.
    let mut rollups: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
    let mut sketches = BatchSketches::default();
    let mut last_used: BTreeMap<i64, i64> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let (key_id, team_id) = owner(i);
        let key = RollupKey {
            start_ms: tollgate_core::time::hour_start(e.ts_ms),
            team_id: team_id.unwrap_or(0),
            key_id: key_id.unwrap_or(0),
            route_id: e.route_id.unwrap_or(0),
            model: e.model.clone().unwrap_or_default(),
            status_class: e.status_class(),
        };
        sketches.add(
            key.start_ms,
            (key.team_id, key.key_id, key.route_id),
            e.model.as_deref().unwrap_or_default(),
            e,
        );
        rollups.entry(key).or_default().add(e);
        if let Some(key_id) = key_id {
            let ts = last_used.entry(key_id).or_insert(e.ts_ms);
            *ts = (*ts).max(e.ts_ms);
        }
    }

    let sums = BatchSums::of(events.iter().enumerate().map(|(i, e)| {
        let (key_id, team_id) = owner(i);
        (e, key_id, team_id)
    }));
    assert_eq!(sums.last_used, last_used);
    let shape = |r: &BTreeMap<RollupKey, RollupSums>| -> Vec<_> {
        r.iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    s.calls,
                    s.errors,
                    s.latency_sum_us,
                    s.tokens.prompt,
                    s.hist,
                )
            })
            .collect()
    };
    assert_eq!(shape(&sums.rollups), shape(&rollups));
    let (want_hourly, want_daily) = sketches.into_grains(&rollups);
    let (got_hourly, got_daily) = sums.sketches.into_grains(&sums.rollups);
    for (got, want) in [(got_hourly, want_hourly), (got_daily, want_daily)] {
        assert_eq!(got.len(), want.len());
        for ((got_key, got), (want_key, want)) in got.iter().zip(&want) {
            assert_eq!(got_key, want_key);
            assert_eq!(got.sketches, want.sketches, "{got_key:?}");
            let calls = |a: &SummaryAddition| {
                a.sums
                    .as_ref()
                    .map(|s| (s.rollup.calls, s.rollup.tokens.prompt, s.unknown_calls))
            };
            assert_eq!(calls(got), calls(want), "{got_key:?}");
        }
    }
}
